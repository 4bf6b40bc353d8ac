"""The simulated SMS gateway of the local runtime (what AWS End User Messaging is in the cloud).

POST /sms with {"to", "from", "text"} answers {"message_id"}, keeps the message
under <data_dir>/sms/<message-id>.json for a developer to read, and a moment
later posts {"message_id", "status": "delivered"} (or "failed" for numbers
matching `fail_pattern`) to the report URL, like a carrier's delivery receipt.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


class SimulatedSmsGateway:
    def __init__(
        self, data_dir: Path, report_url: str, fail_pattern: str = "", report_delay: float = 0.3
    ) -> None:
        self.folder = data_dir / "sms"
        self.report_url = report_url
        self.fail = re.compile(fail_pattern) if fail_pattern else None
        self.report_delay = report_delay
        self.sent: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> str:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    message = json.loads(self.rfile.read(min(length, MAX_BODY)))
                    to, text = str(message["to"]), str(message["text"])
                except (ValueError, KeyError, TypeError):
                    self._answer(400, {"error": 'expected {"to", "from", "text"}'})
                    return
                self._answer(
                    200, {"message_id": gateway.accept(to, str(message.get("from", "")), text)}
                )

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("sms: " + format, *args)

        self.folder.mkdir(parents=True, exist_ok=True)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, name="sms", daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/sms"

    def accept(self, to: str, sender: str, text: str) -> str:
        message_id = uuid.uuid4().hex
        record = {"message_id": message_id, "to": to, "from": sender, "text": text}
        self.sent.append(record)
        (self.folder / f"{message_id}.json").write_text(json.dumps(record, indent=2))
        log.info("SMS to %s: %s", to, text)
        delivered = not (self.fail and self.fail.search(to))
        threading.Thread(target=self._report, args=(message_id, delivered), daemon=True).start()
        return message_id

    def _report(self, message_id: str, delivered: bool) -> None:
        time.sleep(self.report_delay)
        body = json.dumps(
            {"message_id": message_id, "status": "delivered" if delivered else "failed"}
        ).encode()
        # The runtime's own report URL on loopback, never a client's.
        request = urllib.request.Request(  # noqa: S310
            self.report_url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        for _ in range(4):
            try:
                with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback
                    return
            except OSError:
                time.sleep(1)
        log.warning("could not report SMS %s to %s", message_id, self.report_url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
