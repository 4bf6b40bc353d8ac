"""The simulated MMSC of the local runtime: an MM7 server on loopback that acts like a carrier.

    mmsc = SimulatedMmsc(data_dir, report_url, rules_from_env(rules_text))
    url = mmsc.start()          # http://127.0.0.1:<port>/mm7, for the MM7 client
    ...
    mmsc.stop()

It accepts SubmitReq (basic auth is recorded, not enforced), checks it with
mm7.parse_submit_req (a broken one gets SOAP fault 2007), keeps what it got
under <data_dir>/mmsc/<message-id>/ for a developer to look at (submit.txt,
the raw request; smil.xml; every part as a file), answers SubmitRsp 1000, and
report_delay seconds later posts a DeliveryReportReq to report_url, retrying
a few times while that URL is not up.

The first rule whose `match` (a regular expression, searched in the number
without '+') fits the recipient decides what happens; with none, DEFAULT_RULE:

    outcome         answer to SubmitReq                      then
    --------------  ---------------------------------------  ----------------------------
    retrieved       SubmitRsp 1000                           report Retrieved + the UAProf
    rejected, expired, indeterminate, forwarded, deferred, unrecognised
                    SubmitRsp 1000                           report that MMStatus
    refuse          SOAP fault with status_code (default     nothing
                    4007 Service denied: the API sends SMS)
    unavailable     HTTP 503 (transient: the API retries)    nothing
    silent          SubmitRsp 1000                           nothing (a DDM times out)
    timeout         SubmitRsp 1000, but only after           report Retrieved: it took the
                    hang_seconds (past the client's timeout)  message, its answer was late

    MMS_LOCAL_MMSC_RULES='[{"match": "^1404555", "outcome": "rejected"},
      {"match": ".*", "outcome": "retrieved", "ua_prof": "http://www.apple.com/mms/uaprof.rdf"}]'
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final, cast

from pydantic import BaseModel, ConfigDict, TypeAdapter, field_validator

from mmsapi.carrier.mm7 import (
    NAMESPACES,
    STATUS_TABLE,
    XML_CONTENT_TYPE,
    MM7Error,
    MMStatus,
    ReceivedSubmit,
    Version,
    build_delivery_report_req,
    build_fault,
    build_submit_rsp,
    parse_submit_req,
)
from mmsapi.media.guard import NetworkError, post_bytes
from mmsapi.numbers import ascii_digits, ascii_int

log = logging.getLogger(__name__)

GENERIC_UA_PROF: Final = "http://mmsc.local/uaprof/generic-mms-handset.rdf"
MAX_BODY_BYTES: Final = 20 * 1024 * 1024
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")


class Outcome(StrEnum):
    RETRIEVED = "retrieved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    INDETERMINATE = "indeterminate"
    FORWARDED = "forwarded"
    DEFERRED = "deferred"
    UNRECOGNISED = "unrecognised"
    REFUSE = "refuse"
    UNAVAILABLE = "unavailable"
    SILENT = "silent"
    TIMEOUT = "timeout"


_REPORTED: Final[dict[Outcome, MMStatus]] = {
    Outcome.RETRIEVED: MMStatus.RETRIEVED,
    Outcome.REJECTED: MMStatus.REJECTED,
    Outcome.EXPIRED: MMStatus.EXPIRED,
    Outcome.INDETERMINATE: MMStatus.INDETERMINATE,
    Outcome.FORWARDED: MMStatus.FORWARDED,
    Outcome.DEFERRED: MMStatus.DEFERRED,
    Outcome.UNRECOGNISED: MMStatus.UNRECOGNISED,
    Outcome.TIMEOUT: MMStatus.RETRIEVED,
}


class Rule(BaseModel):
    """What the MMSC does for numbers matching `match`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str
    outcome: Outcome
    ua_prof: str | None = None  # sent on Retrieved reports; GENERIC_UA_PROF when unset
    status_code: int = 4007  # the refusal's MM7 status (outcome "refuse")

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid pattern {value!r}: {exc}") from exc
        return value

    def matches(self, number: str) -> bool:
        return re.search(self.match, number.removeprefix("+")) is not None


DEFAULT_RULE: Final = Rule(match=".*", outcome=Outcome.RETRIEVED, ua_prof=GENERIC_UA_PROF)
_RULES: Final = TypeAdapter(list[Rule])


def rules_from_env(value: str) -> list[Rule]:
    """Rules from a JSON list (MMS_LOCAL_MMSC_RULES); empty: none. ValueError when invalid."""
    return _RULES.validate_json(value) if value.strip() else []


@dataclass(frozen=True)
class Submission:
    """One accepted SubmitReq, as the MMSC saw it."""

    message_id: str
    submit: ReceivedSubmit
    username: str | None
    soap_action: str | None
    directory: Path


@dataclass
class _Answer:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _version(submit_version: str) -> Version:
    return "5.3.0" if submit_version == "5.3.0" else "6.8.0"


def _safe_name(name: str, taken: set[str]) -> str:
    base = _SAFE_NAME.sub("_", Path(name).name).lstrip(".") or "part"
    candidate = base
    for number in itertools.count(2):
        if candidate not in taken:
            break
        candidate = f"{number}-{base}"
    taken.add(candidate)
    return candidate


def _username(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(token, validate=True).decode("utf-8").partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return None


class SimulatedMmsc:
    """A loopback MM7 server with carrier-like outcomes per number (see the module doc)."""

    def __init__(
        self,
        data_dir: Path,
        report_url: str,
        rules: list[Rule],
        report_delay: float = 0.5,
        *,
        report_attempts: int = 4,
        report_retry_interval: float = 1.0,
        hang_seconds: float = 30.0,
    ) -> None:
        self.data_dir = data_dir
        self.report_url = report_url
        self.rules = [*rules, DEFAULT_RULE]
        self.report_delay = report_delay
        self.report_attempts = max(1, report_attempts)
        self.report_retry_interval = report_retry_interval
        self.hang_seconds = hang_seconds
        self._submissions: list[Submission] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: _MmscServer | None = None

    # ---- lifecycle

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (port 0: any free one); returns the MM7 URL."""
        server = _MmscServer(("127.0.0.1", port), self)
        self._server = server
        self._stopping.clear()
        # A short poll interval: stop() returns promptly (tests start and stop it often).
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="mmsc", daemon=True
        )
        thread.start()
        self._threads.append(thread)
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulated MMSC is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/mm7"

    def stop(self) -> None:
        """Stop serving; reports not yet sent are dropped."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    # ---- what it got

    def received(self) -> list[ReceivedSubmit]:
        with self._lock:
            return [s.submit for s in self._submissions]

    def submissions(self) -> list[Submission]:
        with self._lock:
            return list(self._submissions)

    def rule_for(self, number: str) -> Rule:
        return next(rule for rule in self.rules if rule.matches(number))

    # ---- one request

    def handle(
        self, body: bytes, content_type: str, authorization: str | None, soap_action: str | None
    ) -> _Answer:
        """The answer to one POST (the HTTP handler only moves bytes)."""
        try:
            submit = parse_submit_req(body, content_type)
        except MM7Error as exc:
            self._store_invalid(body, content_type)
            log.warning("MMSC: invalid SubmitReq: %s", exc)
            fault = build_fault("", 2007, "Message format corrupt", str(exc)[:200])
            return _Answer(500, XML_CONTENT_TYPE, fault)
        version = _version(submit.version)
        rule = self.rule_for(submit.recipients[0])
        if rule.outcome is Outcome.UNAVAILABLE:
            return _Answer(503, "text/plain", b"Service Unavailable\n", {"Retry-After": "1"})
        if rule.outcome is Outcome.REFUSE:
            text = STATUS_TABLE.get(rule.status_code, (None, "Refused"))[1]
            fault = build_fault(submit.transaction_id, rule.status_code, text, "", version)
            log.info("MMSC: refused %s with %s", submit.recipients[0], rule.status_code)
            return _Answer(500, XML_CONTENT_TYPE, fault)
        message_id = self._accept(submit, body, content_type, authorization, soap_action)
        rsp = build_submit_rsp(submit.transaction_id, 1000, "Success", message_id, version)
        if rule.outcome is Outcome.TIMEOUT:
            self._stopping.wait(self.hang_seconds)  # taken, but the answer comes too late
        return _Answer(200, XML_CONTENT_TYPE, rsp)

    def _new_id(self) -> str:
        # Numeric, like carriers' ids; unique within a run and across restarts.
        return f"{int(time.time())}{next(self._ids):06d}"

    def _accept(
        self,
        submit: ReceivedSubmit,
        body: bytes,
        content_type: str,
        authorization: str | None,
        soap_action: str | None,
    ) -> str:
        message_id = self._new_id()
        directory = self._store(message_id, submit, body, content_type)
        submission = Submission(
            message_id, submit, _username(authorization), soap_action, directory
        )
        with self._lock:
            self._submissions.append(submission)
        log.info("MMSC: accepted %s for %s, kept in %s", message_id, submit.recipients, directory)
        if submit.delivery_report:
            thread = threading.Thread(
                target=self._report, args=(submission,), name=f"mmsc-report-{message_id}"
            )
            thread.daemon = True
            thread.start()
            with self._lock:
                self._threads.append(thread)
        return message_id

    # ---- files for the developer

    def _store(self, message_id: str, submit: ReceivedSubmit, body: bytes, ct: str) -> Path:
        directory = self.data_dir / "mmsc" / message_id
        directory.mkdir(parents=True, exist_ok=True)
        # The raw request with its Content-Type: a complete MIME document, re-parseable.
        (directory / "submit.txt").write_bytes(f"Content-Type: {ct}\r\n\r\n".encode() + body)
        (directory / "smil.xml").write_text(submit.smil, encoding="utf-8")
        taken = {"submit.txt", "smil.xml"}
        for part in submit.parts:
            (directory / _safe_name(part.filename or part.content_id, taken)).write_bytes(part.data)
        return directory

    def _store_invalid(self, body: bytes, content_type: str) -> None:
        directory = self.data_dir / "mmsc" / "invalid"
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{self._new_id()}.txt"
        (directory / name).write_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)

    # ---- delivery reports

    def _report(self, submission: Submission) -> None:
        if self._stopping.wait(self.report_delay):
            return
        submit = submission.submit
        for index, recipient in enumerate(submit.recipients):
            rule = self.rule_for(recipient)
            status = _REPORTED.get(rule.outcome)
            if status is not None:
                self._post_report(submission, index, recipient, rule, status)

    def _post_report(
        self, submission: Submission, index: int, recipient: str, rule: Rule, status: MMStatus
    ) -> None:
        ua_prof = (rule.ua_prof or GENERIC_UA_PROF) if status is MMStatus.RETRIEVED else None
        body, content_type = build_delivery_report_req(
            transaction_id=f"dr-{submission.message_id}-{index + 1}",
            message_id=submission.message_id,
            recipient=recipient,
            sender=submission.submit.sender,
            mm_status=status,
            date=datetime.now(UTC),
            ua_prof=ua_prof,
            version=_version(submission.submit.version),
        )
        for attempt in range(1, self.report_attempts + 1):
            if self._send(body, content_type):
                log.info("MMSC: reported %s %s", submission.message_id, status.value)
                return
            if attempt < self.report_attempts and self._stopping.wait(self.report_retry_interval):
                return
        log.warning("MMSC: gave up reporting %s to %s", submission.message_id, self.report_url)

    def _send(self, body: bytes, content_type: str) -> bool:
        headers = {"Content-Type": content_type, "SOAPAction": f'"{NAMESPACES["6.8.0"]}"'}
        try:
            status = post_bytes(
                self.report_url,
                body,
                headers,
                allow_loopback=True,  # the local API, by design
                timeout=10.0,
                connect_timeout=2.0,
                max_response_bytes=None,
            ).status
        except NetworkError as exc:
            log.info("MMSC: report URL not reachable: %s", exc.reason)
            return False
        ok = 200 <= status < 300
        if not ok:
            log.info("MMSC: report URL answered HTTP %s", status)
        return ok


class _MmscServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], mmsc: SimulatedMmsc) -> None:
        super().__init__(address, _MmscHandler)
        self.mmsc = mmsc


class _MmscHandler(BaseHTTPRequestHandler):
    server_version = "mmsapi-simulated-mmsc"

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "")
        if not ascii_digits(length):
            self._write(_Answer(411, "text/plain", b"Content-Length required\n"))
            return
        size = ascii_int(length, 0, MAX_BODY_BYTES)
        if size is None:
            self._write(_Answer(413, "text/plain", b"Request too large\n"))
            return
        body = self.rfile.read(size)
        mmsc = cast(_MmscServer, self.server).mmsc
        answer = mmsc.handle(
            body,
            self.headers.get("Content-Type", ""),
            self.headers.get("Authorization"),
            self.headers.get("SOAPAction"),
        )
        self._write(answer)

    def do_GET(self) -> None:
        self._write(_Answer(200, "text/plain", b"simulated MMSC: POST MM7 SubmitReq here\n"))

    def _write(self, answer: _Answer) -> None:
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):  # a late answer: the client left
            log.info("MMSC: the client left before its answer")

    def log_message(self, format: str, *args: object) -> None:
        log.debug("MMSC: " + format, *args)
