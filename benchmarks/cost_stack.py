"""The emulated stack benchmarks/cost.py drives, in-process and in order (no pollers).

The local runtime's parts, run by hand so that every invocation is counted and timed
alone: moto (mock_aws) holding every resource of template.yaml, each function's real
handler with its own environment (local.functions, isolated), the HTTP API's routes
turned into API Gateway events (local.http_api.LocalApi), the template's SQS event
sources and the outbox stream handed to their functions as Lambda's event source
mappings hand them (local.queues, local.streams), the state machines executed by
moto's interpreter with their Lambda tasks bridged to the handlers, the simulated MMSC
and SMS gateway (local.mmsc, local.sms), whose delivery reports come back through the
carrier route (a DDM's report queues its send again). One loopback
server (Web) serves the templates' media and takes the carriers' reports and the
customer's postbacks.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.cost_meter import Meter
from local.functions import (
    LocalFunction,
    by_name_and_arn,
    describe_functions,
    reset_product_caches,
    threads_inherit_the_invocation,
)
from local.http_api import HttpRequest, LocalApi, routes_from_template
from local.mmsc import Rule, SimulatedMmsc
from local.queues import QueuePoller, QueueSource, queue_sources
from local.sms import SimulatedSmsGateway
from local.stack import Stack, load_template, provision
from local.streams import StreamReader, StreamSource, deliver, stream_sources

SOURCE_IP = "203.0.113.10"
SNS_RECEIPT = Path(__file__).resolve().parent.parent / "events/report/sns-sms-delivered.json"


@dataclass
class Posted:
    path: str
    body: bytes
    content_type: str


@dataclass
class Web:
    """Media by path (GET), and every POST kept (reports, postbacks)."""

    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    posted: list[Posted] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = web.media.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                data, content_type = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with web.lock:
                    web.posted.append(Posted(self.path, body, self.headers.get_content_type()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="web").start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def taken(self, prefix: str) -> list[Posted]:
        with self.lock:
            return [p for p in self.posted if p.path.startswith(prefix)]


@dataclass
class Counts:
    api_requests: int = 0
    api_request_bytes: int = 0
    api_answer_bytes: int = 0
    mm7_reports: int = 0
    sms_receipts: int = 0
    schedule_runs: int = 0
    unsettled_rounds: int = 0


class CostStack:
    """Set up inside mock_aws; `post` the API, `settle` runs everything behind it."""

    def __init__(self, data_dir: Path, rules: list[Rule], web: Web, template: Path) -> None:
        self.web = web
        self.base = web.start()
        self.token = secrets.token_urlsafe(24)
        self.mmsc = SimulatedMmsc(data_dir, f"{self.base}/report/mm7", rules, report_delay=0.0)
        self.sms = SimulatedSmsGateway(data_dir, f"{self.base}/report/sms", report_delay=0.0)
        wanted = {
            "MmscUrl": self.mmsc.start(),
            "CarrierReportToken": self.token,
            "PublicBaseUrl": "https://mms.example.com",
        }
        sms_url = self.sms.start()
        known = load_template(template).get("Parameters", {})
        self.stack: Stack = provision(
            "mmsapi-cost", template, parameters={k: v for k, v in wanted.items() if k in known}
        )
        reset_product_caches()
        self.undo_threads = threads_inherit_the_invocation()
        self.functions: dict[str, LocalFunction] = describe_functions(
            self.stack, sms_url=sms_url, isolated=True
        )
        self.api = LocalApi(
            routes_from_template(self.stack.sam_template), self.functions, self.stack.account_id
        )
        self.queues: list[QueueSource] = queue_sources(self.stack)[0]
        self.streams: list[tuple[StreamSource, StreamReader]] = [
            (source, StreamReader(source, self.stack.region))
            for source in stream_sources(self.stack)
        ]
        self.counts = Counts()
        self.reports_done = 0

    def load(self) -> None:
        from local.stepfunctions import install_lambda_bridge

        for function in self.functions.values():
            function.load()
            if function.handler is None:
                raise RuntimeError(f"{function.logical_id}: {function.load_error}")
        callable_by = by_name_and_arn(self.functions)
        install_lambda_bridge(lambda name, event: callable_by[name].invoke(event))

    def stop(self) -> None:
        self.mmsc.stop()
        self.sms.stop()
        self.web.stop()
        self.undo_threads()

    # ------------------------------------------------------------ the front door

    def post(self, path: str, body: bytes, content_type: str = "application/xml") -> bytes:
        """One request through API Gateway to its function."""
        self.counts.api_requests += 1
        self.counts.api_request_bytes += len(body)
        request = HttpRequest(
            "POST",
            path,
            [("Content-Type", content_type), ("Host", "api.example.com")],
            body,
            SOURCE_IP,
            "HTTP/1.1",
        )
        answer = self.api.handle(request).body
        self.counts.api_answer_bytes += len(answer)
        return answer

    def egress(self) -> dict[str, int]:
        """Bytes that left AWS: MM7 SubmitReqs to the carrier, postbacks, API answers."""
        submitted = self.mmsc.data_dir.glob("mmsc/*/submit.txt")
        return {
            "mm7": sum(f.stat().st_size for f in submitted),
            "postbacks": sum(len(p.body) for p in self.web.taken("/postback")),
            "answers": self.counts.api_answer_bytes,
        }

    # ------------------------------------------------------------ behind it

    def settle(self, quiet_seconds: float = 0.3, timeout: float = 120.0) -> None:
        """Run queues, reports and streams until nothing moves and every report is in."""
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            moved = self.pump_queues() + self.pump_reports() + self.pump_streams()
            if moved:
                quiet_since = time.monotonic()
                continue
            waiting = self.reports_expected() > self.reports_done or self.workflows_running()
            if not waiting and time.monotonic() - quiet_since >= quiet_seconds:
                return
            time.sleep(0.02)
        self.counts.unsettled_rounds += 1

    def workflows_running(self) -> bool:
        """An encoding workflow still running (in the interpreter's own thread)."""
        client = _client("stepfunctions")
        for machine in client.list_state_machines()["stateMachines"]:
            running = client.list_executions(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )
            if running["executions"]:
                return True
        return False

    def reports_expected(self) -> int:
        return len(self.mmsc.submissions()) + len(self.sms.sent)

    def pump_queues(self) -> int:
        moved = 0
        for source in self.queues:
            function = self.functions[source.function]
            poller = QueuePoller(source, function, threading.Event(), self.stack.region)
            while True:
                with Meter.polling(f"{source.function} (SQS event source)"):
                    messages = (
                        _sqs()
                        .receive_message(
                            QueueUrl=source.queue_url,
                            MaxNumberOfMessages=source.batch_size,
                            WaitTimeSeconds=0,
                            MessageSystemAttributeNames=["All"],
                            MessageAttributeNames=["All"],
                        )
                        .get("Messages", [])
                    )
                if not messages:
                    break
                with Meter.polling(f"{source.function} (SQS event source)"):
                    poller.deliver(_sqs(), messages)
                moved += len(messages)
        return moved

    def pump_streams(self) -> int:
        moved = 0
        for source, reader in self.streams:
            function = self.functions[source.function]
            while True:
                with Meter.polling(f"{source.function} (stream event source)"):
                    handed = deliver(reader, function.invoke, function.acting)
                if not handed:
                    break
                moved += handed
        return moved

    def pump_reports(self) -> int:
        """The carriers' reports: MM7 through API Gateway, SMS receipts (SNS on AWS)."""
        reports = self.web.taken("/report/")
        for report in reports[self.reports_done :]:
            channel = report.path.rsplit("/", 1)[-1]
            if channel == "mm7":
                self.counts.mm7_reports += 1
                self.post(f"/carrier/mm7/{self.token}", report.body, report.content_type)
            else:
                # On AWS an SMS receipt reaches ReportFunction through SNS, not the API.
                self.counts.sms_receipts += 1
                self._sms_receipt(report)
        moved = len(reports) - self.reports_done
        self.reports_done = len(reports)
        return moved

    def _sms_receipt(self, report: Posted) -> None:
        """End User Messaging's receipt, as SNS hands it to ReportFunction."""
        fields = json.loads(report.body)
        event = json.loads(SNS_RECEIPT.read_text())
        sns = event["Records"][0]["Sns"]
        message = json.loads(sns["Message"])
        message["messageId"] = str(fields["message_id"])
        delivered = fields.get("status") == "delivered"
        message["messageStatus"] = "DELIVERED" if delivered else "FAILED"
        message["eventType"] = "TEXT_DELIVERED" if delivered else "TEXT_CARRIER_UNREACHABLE"
        sns["Message"] = json.dumps(message)
        self.functions["ReportFunction"].invoke(event)

    def run_schedule(self, function: str, event: dict[str, Any]) -> None:
        self.counts.schedule_runs += 1
        self.functions[function].invoke(event)


_CLIENTS: dict[str, Any] = {}


def _sqs() -> Any:
    return _client("sqs")


def _client(service: str) -> Any:
    import boto3

    if service not in _CLIENTS:
        session: Any = boto3.session.Session()  # any service name: botocore's stubs list each
        _CLIENTS[service] = session.client(service, region_name="us-east-1")
    return _CLIENTS[service]
