"""`make local`: the whole system on one laptop, with no AWS account and no Docker.

    .venv/bin/python -m local.runtime [--template path/to/template.yaml]

- an embedded AWS (moto's server on loopback) holding every table, bucket, queue,
  bus, rule and state machine of template.yaml, created by local.stack from the
  template as the SAM transform translates it (what `sam deploy` deploys);
- each function with its own environment and its own role: an AWS gate
  (local.aws_gate) answers AccessDenied, as AWS does, to a call its role does not
  allow, and <data dir>/aws-gate.json tells every denial when the runtime stops;
- the HTTP API: every HttpApi route of every function in the template, turned
  into API Gateway payload-2.0 events for the real handlers, run in-process;
- the SQS event sources of the template, polled and handed to their handlers the
  way Lambda's event source mappings do (failed messages come back after the
  queue's visibility timeout: that is the retry policy);
- a demo account (the documents' sample key, shortcode 28444, service-id 12345),
  the same across restarts;
- the state (tables and buckets) kept in <data dir>/state/ across restarts
  (local.persistence; `make local-reset` or `--reset` forgets it);
- the inbox at /_inbox/ (local.inbox): what phones received, the postbacks of
  accounts whose URL is the inbox (the demo account's unless MMS_LOCAL_POSTBACK_URL
  is set), timelines, and a phone that sends MMS and SMS (local.phone).

Settings (environment): MMS_LOCAL_PORT (3000), MMS_LOCAL_AWS_PORT (4566),
MMS_LOCAL_API_KEY, MMS_LOCAL_ACCOUNT_ID (demo), MMS_LOCAL_POSTBACK_SECRET,
MMS_LOCAL_POSTBACK_URL, MMS_LOCAL_CARRIER_TOKEN, MMS_LOCAL_DATA_DIR (.local-data),
MMS_LOCAL_TEMPLATE (template.yaml; or --template), MMS_LOCAL_GSI_LAG (1.0: seconds
during which an index read does not see a write, as AWS's GSIs may lag).
While it runs, <data dir>/runtime.json tells mmsapi-admin and local.invoke where
the embedded AWS is.

This module starts and stops the parts, each in a module of its own: local.stack
(the resources), local.functions (the handlers, in-process), local.http_api (the
routes and the HTTP server) and local.queues (the SQS pollers).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

from local.functions import (
    LocalFunction,
    by_name_and_arn,
    describe_functions,
    reset_product_caches,
    running_function,
    threads_inherit_the_invocation,
)
from local.http_api import ApiServer, LocalApi, Route, routes_from_template
from local.persistence import LocalState, Snapshotter, reset, state_dir
from local.queues import POLL_WAIT_SECONDS, QueuePoller, QueueSource, queue_sources
from local.schedules import SchedulePoller, schedules
from local.stack import TEMPLATE_PATH, Stack, TemplateError, check_order, provision
from local.streams import StreamPoller, stream_sources
from mmsapi.numbers import ascii_int
from mmsapi.redact import RedactingFilter

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

    from local.inbox import Inbox
    from local.mmsc import SimulatedMmsc
    from local.sms import SimulatedSmsGateway

STACK_NAME = "mmsapi-local"
REGION = "us-east-1"
SAMPLE_API_KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"  # the documents' sample key
DEMO_SHORTCODE = "28444"
DEMO_COUNTRY = "US"
DEMO_SERVICE_ID = "12345"
DEMO_ACCOUNT_ID = "demo00000001"
SMS_MO_TOPIC = "SmsInboundTopic"  # two-way SMS: the phone's SMS are published there
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

# Named, not __name__: `python -m local.runtime` runs this module as __main__.
log = logging.getLogger("local.runtime")


class StartupError(Exception):
    """The runtime cannot start (port busy, another runtime, bad setting): told as is."""


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class LocalSettings:
    port: int = 3000
    aws_port: int = 4566
    api_key: str = SAMPLE_API_KEY
    account_id: str = DEMO_ACCOUNT_ID
    postback_secret: str = ""  # empty: the kept one, else a new one
    postback_url: str = ""
    data_dir: Path = Path(".local-data")
    template: Path = TEMPLATE_PATH
    gsi_lag_seconds: float = 1.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> LocalSettings:
        env = os.environ if environ is None else environ
        return cls(
            port=_port(env, "MMS_LOCAL_PORT", 3000),
            aws_port=_port(env, "MMS_LOCAL_AWS_PORT", 4566),
            api_key=env.get("MMS_LOCAL_API_KEY") or SAMPLE_API_KEY,
            account_id=env.get("MMS_LOCAL_ACCOUNT_ID") or DEMO_ACCOUNT_ID,
            postback_secret=env.get("MMS_LOCAL_POSTBACK_SECRET", ""),
            postback_url=env.get("MMS_LOCAL_POSTBACK_URL", ""),
            data_dir=data_dir(env),
            template=Path(env.get("MMS_LOCAL_TEMPLATE") or TEMPLATE_PATH).resolve(),
            gsi_lag_seconds=_seconds(env, "MMS_LOCAL_GSI_LAG", 1.0),
        )

    @property
    def state_file(self) -> Path:
        return self.data_dir / "runtime.json"

    @property
    def gate_file(self) -> Path:
        return self.data_dir / "aws-gate.json"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "runtime.log"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where runtime.json and the log live (mmsapi-admin reads the same variable)."""
    env = os.environ if environ is None else environ
    return Path(env.get("MMS_LOCAL_DATA_DIR") or ".local-data")


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "")
    if not text:
        return default
    if ascii_int(text, 1, 65535) is None:
        raise StartupError(f"{name}={text!r} is not a port number")
    return int(text)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise StartupError(f"{name}={text!r} is not a number of seconds (0 to 3600)")
    return value


# ---------------------------------------------------------------- ports


def bind_api_server(port: int) -> ApiServer:
    """Take the API port at once, so a busy port is told before anything else starts."""
    try:
        return ApiServer(("127.0.0.1", port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"Port {port} is already in use, so the API cannot listen on it. "
                "Stop whatever uses it (another `make local`?) or choose another port, "
                "e.g. MMS_LOCAL_PORT=3001 make local"
            ) from exc
        raise


def check_port_free(port: int, variable: str) -> None:
    """moto's threaded server hangs instead of failing on a busy port: check first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise StartupError(
                f"Port {port} is already in use, so the embedded AWS cannot listen on it. "
                f"Stop whatever uses it or choose another port, e.g. {variable}=4567 make local"
            ) from exc


# ---------------------------------------------------------------- logs


class _Tee:
    """stdout (or stderr) that also copies everything into the log file; each line
    printed during an invocation starts with the function's name."""

    def __init__(self, stream: TextIO, copy: IO[str], lock: threading.Lock) -> None:
        self._stream = stream
        self._copy = copy
        self._lock = lock
        self._line_start = True

    def write(self, text: str) -> int:
        written = len(text)
        function = running_function()
        with self._lock:
            if function and text:
                prefix = f"[{function}] "
                body = text[:-1].replace("\n", "\n" + prefix) + text[-1]
                text = (prefix if self._line_start else "") + body
            self._line_start = text.endswith("\n")
            self._stream.write(text)
            self._stream.flush()
            if not self._copy.closed:
                self._copy.write(text)
                self._copy.flush()
        return written

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def setup_logging(log_file: Path) -> IO[str]:
    """Everything printed goes to the terminal and to log_file (handlers log to stdout)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    copy = log_file.open("w", encoding="utf-8")
    lock = threading.Lock()
    # Before any handler module is imported: Powertools' Logger keeps the sys.stdout it sees.
    sys.stdout = cast(TextIO, _Tee(sys.stdout, copy, lock))
    sys.stderr = cast(TextIO, _Tee(sys.stderr, copy, lock))
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s local: %(message)s"))
    # Every local log line (requests, the simulated carrier's SMS with its view link) is
    # redacted like the functions' own: no API key, secret or view token in the output.
    handler.addFilter(RedactingFilter())
    # The parent of local.runtime, local.functions, local.http_api and local.queues.
    local_log = logging.getLogger("local")
    local_log.addHandler(handler)
    local_log.setLevel(logging.INFO)
    local_log.propagate = False
    # moto's server logs every AWS call it serves: too much to read.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Powertools warns on every invocation that records no metric; on AWS it is one log line.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    return copy


# ---------------------------------------------------------------- the runtime


@dataclass
class DemoAccount:
    account_id: str
    api_key: str
    postback_url: str
    postback_secret: str


class Runtime:
    """Starts and stops everything; `stop` works whatever `start` got to."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.api_server: ApiServer | None = None
        self.moto: ThreadedMotoServer | None = None
        self.mmsc: SimulatedMmsc | None = None
        self.mmsc_url = ""
        self.carrier_token = ""
        self.sms: SimulatedSmsGateway | None = None
        self.threads: list[threading.Thread] = []
        self.stack: Stack | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.routes: list[Route] = []
        self.sources: list[QueueSource] = []
        self.skipped: list[str] = []
        self.environment: dict[str, str] = {}
        self.gate: Any = None
        self.undo_threads: Callable[[], None] | None = None
        self.demo: DemoAccount | None = None
        self.inbox: Inbox | None = None
        self.state: LocalState | None = None
        self.snapshots: Snapshotter | None = None
        self.serving = False
        self.state_written = False

    # ------------------------------------------------------------ start

    def start(self) -> None:
        settings = self.settings
        self._refuse_second_runtime()
        self.api_server = bind_api_server(settings.port)
        check_port_free(settings.aws_port, "MMS_LOCAL_AWS_PORT")
        self._start_aws()
        carrier = self._start_carrier()
        # What a deployer gives `sam deploy`; links in fallback SMS point at this runtime.
        wanted = {**carrier, "PublicBaseUrl": settings.api_url}
        self.stack = provision(
            STACK_NAME,
            settings.template,
            parameters={
                name: value
                for name, value in wanted.items()
                if name in load_parameters(settings.template)
            },
        )
        check_order(self.stack)  # a loop CloudFormation would refuse
        self.state = LocalState(self.stack, settings.data_dir)
        items, objects = self.state.restore()  # before any function runs
        if items or objects:
            log.info("kept state restored: %d items, %d objects", items, objects)
        reset_product_caches()
        self.gate = _install_gate(self.stack, self.settings.gsi_lag_seconds)
        self.undo_threads = threads_inherit_the_invocation()
        from local.inbox import RECEIVER

        self.functions = describe_functions(
            self.stack,
            sms_url=carrier["SmsUrl"],
            # Accounts without a postback URL post to the inbox (local only).
            postback_inbox=f"{settings.api_url}{RECEIVER}",
            gate=self.gate,
            isolated=True,
        )
        if "ApiFunction" in self.functions:
            self.environment = self.functions["ApiFunction"].environment
        self.inbox = self._inbox()
        self.demo = self._create_demo_account()
        for function in self.functions.values():
            function.load()
        from local.stepfunctions import install_lambda_bridge

        callable_by = by_name_and_arn(self.functions)
        install_lambda_bridge(lambda name, event: callable_by[name].invoke(event))
        self.routes = routes_from_template(self.stack.sam_template)
        self.sources, self.skipped = queue_sources(self.stack)
        for source in self.sources:
            function = self.functions[source.function]
            if function.handler is None:
                log.error("not polling %s: %s is not loaded", source.queue_url, source.function)
                continue
            poller = QueuePoller(source, function, self.stop_event, self.stack.region)
            poller.start()
            self.threads.append(poller)
        # DynamoDB streams (the postback outbox -> OutboxFunction -> the event bus).
        for stream in stream_sources(self.stack):
            relay = StreamPoller(
                stream, self.functions[stream.function], self.stop_event, self.stack.region
            )
            relay.start()
            self.threads.append(relay)
        # EventBridge schedules (the sweeper that ends overdue messages).
        scheduled, unscheduled = schedules(self.stack)
        self.skipped.extend(unscheduled)
        for schedule in scheduled:
            ticker = SchedulePoller(
                schedule, self.functions[schedule.function], self.stop_event, self.stack
            )
            ticker.start()
            self.threads.append(ticker)
        self.api_server.api = LocalApi(
            self.routes, self.functions, self.stack.account_id, inbox=self.inbox
        )
        serving = threading.Thread(
            target=self.api_server.serve_forever, kwargs={"poll_interval": 0.2}, name="api"
        )
        serving.daemon = True
        serving.start()
        self.serving = True
        self.snapshots = Snapshotter(self.state, self.stop_event)
        self.snapshots.start()

    def _refuse_second_runtime(self) -> None:
        state_file = self.settings.state_file
        if not state_file.exists():
            return
        try:
            pid = int(json.loads(state_file.read_text())["pid"])
        except (ValueError, KeyError, TypeError):
            return  # unreadable: left by a crash, overwritten below
        if pid != os.getpid() and _alive(pid):
            raise StartupError(
                f"Another local runtime (pid {pid}) is running with {state_file}. "
                "Stop it first, or give this one its own MMS_LOCAL_DATA_DIR and ports."
            )

    def _start_aws(self) -> None:
        from moto.server import ThreadedMotoServer

        os.environ.update(FAKE_CREDENTIALS)
        os.environ["AWS_ENDPOINT_URL"] = self.settings.aws_endpoint
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = REGION
        # A named profile or a real config would point boto3 elsewhere.
        os.environ.pop("AWS_PROFILE", None)
        # State machines really run; their non-Lambda service calls go to this server.
        os.environ["MOTO_PORT"] = str(self.settings.aws_port)
        from local import dynamodb
        from local.stepfunctions import enable_execution

        enable_execution()
        dynamodb.install()  # atomic writes, transactions that cost what they touch
        self.moto = ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.settings.aws_port, verbose=False
        )
        self.moto.start()

    def _inbox(self) -> Inbox:
        """The inbox at /_inbox/: it reads accounts and sends as mmsapi-admin does (an
        operator's calls, with every function's table names)."""
        from local.inbox import Inbox

        variables: dict[str, str] = {}
        for function in self.functions.values():
            variables.update(function.environment)
        variables.update(self.environment)

        def secret_of(account_id: str) -> str | None:
            from mmsapi.settings import scoped_settings, settings_from
            from mmsapi.store.accounts import AccountStore

            with scoped_settings(settings_from(variables)):
                account = AccountStore().get(account_id)
            return account.postback_secret if account is not None else None

        def timeline(tracking: str) -> str | None:
            from mmsapi.admin.trace import trace
            from mmsapi.services.accounts import InvalidInputError
            from mmsapi.settings import scoped_settings, settings_from
            from mmsapi.store.accounts import AccountStore

            with scoped_settings(settings_from(variables)):
                try:
                    return trace(tracking, AccountStore())
                except InvalidInputError as exc:
                    return str(exc)

        return Inbox(
            self.settings.data_dir,
            port=self.settings.port,
            carrier_url=f"{self.settings.api_url}/carrier/mm7/{self.carrier_token}",
            shortcode=DEMO_SHORTCODE,
            secret_of=secret_of,
            timeline=timeline,
            send_sms=self._sms_mo(),
        )

    def _sms_mo(self) -> Callable[[str, str, str], str] | None:
        """A phone's SMS: End User Messaging publishes it to the two-way SMS topic, and SNS
        hands it to the function subscribed (not emulated otherwise: done here as SNS
        does it). None when the template has no such topic."""
        from local.phone import sms_mo_event

        assert self.stack is not None
        topic = SMS_MO_TOPIC
        subscribed = [
            logical_id
            for logical_id, resource in self.stack.sam_template["Resources"].items()
            if resource.get("Type") == "AWS::Serverless::Function"
            for event in (resource.get("Properties", {}).get("Events") or {}).values()
            if event.get("Type") == "SNS"
            and (event.get("Properties") or {}).get("Topic") == {"Ref": topic}
        ]
        if topic not in self.stack.arns or not subscribed:
            return None
        function = self.functions[subscribed[0]]
        topic_arn = self.stack.arns[topic]

        def send_sms(sender: str, recipient: str, text: str) -> str:
            event = sms_mo_event(topic_arn, sender=sender, recipient=recipient, text=text)
            result = function.invoke(event)
            log.info("phone: SMS from %s to %s handed to %s", sender, recipient, function.name)
            return f"delivered to {subscribed[0]} ({json.dumps(result)[:200]})"

        return send_sms

    def _create_demo_account(self) -> DemoAccount:
        """As `mmsapi-admin` does it: an operator's call, with the API's table names. A
        kept demo account (a restart) is the same one, with this start's postback URL
        and, when MMS_LOCAL_POSTBACK_SECRET is set, that secret."""
        from mmsapi.models import Shortcode
        from mmsapi.services.accounts import create_account
        from mmsapi.settings import scoped_settings, settings_from
        from mmsapi.store.accounts import AccountStore

        s = self.settings
        with scoped_settings(settings_from(self.environment)):
            store = AccountStore()
            kept = store.by_api_key(s.api_key)
            account_id = kept.account_id if kept is not None else s.account_id
            # No MMS_LOCAL_POSTBACK_URL: the postbacks go to the inbox, not nowhere.
            url = s.postback_url or (self.inbox.receiver_url(account_id) if self.inbox else "")
            if kept is None:
                account, key = create_account(
                    store,
                    "demo",
                    shortcodes=[Shortcode(code=DEMO_SHORTCODE, country=DEMO_COUNTRY)],
                    service_id=DEMO_SERVICE_ID,
                    postback_url=url,
                    api_key=s.api_key,
                    account_id=s.account_id,
                    postback_secret=s.postback_secret or None,
                )
            else:
                secret = s.postback_secret or kept.postback_secret
                changed = store.change(
                    kept.account_id,
                    lambda a: dataclasses.replace(a, postback_url=url, postback_secret=secret),
                )
                account, key = changed or kept, s.api_key
        return DemoAccount(account.account_id, key, account.postback_url, account.postback_secret)

    def write_state(self) -> None:
        """runtime.json: written once ready (tests wait for it), removed on exit."""
        assert self.stack is not None
        assert self.demo is not None
        state = {
            "pid": os.getpid(),
            "api_url": self.settings.api_url,
            "aws_endpoint": self.settings.aws_endpoint,
            "stack_name": self.stack.name,
            "api_key": self.demo.api_key,
            "carrier_token": self.carrier_token,  # `python -m local phone` posts MO with it
            "inbox_url": f"{self.settings.api_url}/_inbox/",
            "demo_account": {
                "account_id": self.demo.account_id,
                "shortcode": f"{DEMO_SHORTCODE}:{DEMO_COUNTRY}",
                "service_id": DEMO_SERVICE_ID,
                "postback_url": self.demo.postback_url,
                "postback_secret": self.demo.postback_secret,
            },
            # ApiFunction's: the resource names mmsapi-admin and the tests look up.
            "environment": self.environment,
            "functions": {
                name: {**f.describe(), "environment": f.environment}
                for name, f in self.functions.items()
            },
            "log_file": str(self.settings.log_file),
        }
        path = self.settings.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.partial")
        # It holds the demo key and secret: readable by this user only.
        partial.touch(mode=0o600)
        partial.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        partial.replace(path)
        self.state_written = True

    def _start_carrier(self) -> dict[str, str]:
        """The simulated MMSC and SMS gateway, unless MMS_MM7_URL names a real MMSC:
        the template's carrier parameters (and SmsUrl, the local stand-in for SMS)."""
        from local.mmsc import SimulatedMmsc, rules_from_env
        from local.sms import SimulatedSmsGateway

        # Pinned by MMS_LOCAL_CARRIER_TOKEN (a real MMSC's configuration names it), else new.
        token = self.carrier_token = os.environ.get("MMS_LOCAL_CARRIER_TOKEN") or (
            secrets.token_urlsafe(24)
        )
        api = f"http://127.0.0.1:{self.settings.port}"
        found = {"CarrierReportToken": token}
        real_mmsc = os.environ.get("MMS_MM7_URL", "")
        if real_mmsc:
            found["MmscUrl"] = real_mmsc
        else:
            rules = rules_from_env(os.environ.get("MMS_LOCAL_MMSC_RULES", "") or "[]")
            self.mmsc = SimulatedMmsc(self.settings.data_dir, f"{api}/carrier/mm7/{token}", rules)
            found["MmscUrl"] = self.mmsc_url = self.mmsc.start()
        self.sms = SimulatedSmsGateway(
            self.settings.data_dir,
            f"{api}/carrier/sms/{token}",
            fail_pattern=os.environ.get("MMS_LOCAL_SMS_FAIL", ""),
        )
        found["SmsUrl"] = self.sms.start()
        return found

    # ------------------------------------------------------------ stop

    def stop(self) -> None:
        self.stop_event.set()
        if self.api_server is not None:
            if self.serving:
                self.api_server.shutdown()
            self.api_server.server_close()
        for thread in self.threads:
            thread.join(timeout=POLL_WAIT_SECONDS + 3)
        if self.snapshots is not None:
            self.snapshots.join(timeout=30)
            self.snapshots.final()  # nothing writes any more
        for carrier in (self.mmsc, self.sms):
            if carrier is not None:
                with contextlib.suppress(Exception):
                    carrier.stop()
        if self.gate is not None:
            self.write_gate_report()
            with contextlib.suppress(Exception):
                self.gate.uninstall()
        if self.undo_threads is not None:
            self.undo_threads()
        if self.moto is not None:
            with contextlib.suppress(Exception):
                self.moto.stop()
        if self.state_written:
            self.settings.state_file.unlink(missing_ok=True)

    def write_gate_report(self) -> None:
        """<data dir>/aws-gate.json: what the AWS gate checked and denied (tests read it)."""
        report = {
            "summary": self.gate.summary(),
            "denials": [denial.describe() for denial in self.gate.denials],
        }
        path = self.settings.gate_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        for denial in report["denials"]:
            log.warning("AWS denied a call (AccessDenied): %s", denial)

    # ------------------------------------------------------------ banner

    def banner(self) -> str:
        assert self.stack is not None
        assert self.demo is not None
        s = self.settings
        endpoint = s.aws_endpoint
        bucket = self.stack.physical.get("MediaBucket", "")
        lines = [
            "",
            "mmsapi local runtime: ready",
            "",
            f"  API              {s.api_url}/ep/v1/   (every route of template.yaml, below)",
            f"  API key          {self.demo.api_key}",
            f"  Demo account     {self.demo.account_id}: shortcode {DEMO_SHORTCODE} "
            f"({DEMO_COUNTRY}), service-id {DEMO_SERVICE_ID}",
            "  Postback URL     "
            + (
                self.demo.postback_url
                + (
                    "   (the inbox; MMS_LOCAL_POSTBACK_URL sends them elsewhere)"
                    if "/_inbox/" in self.demo.postback_url
                    else ""
                )
            ),
            f"  Postback secret  {self.demo.postback_secret}",
            "                   (X-MMS-Signature: sha256=HMAC-SHA256 of the body with it)",
            "  Carrier          "
            + (
                f"simulated MMSC {self.mmsc_url} (what it received: {self.settings.data_dir}/mmsc/;"
                " outcomes per number: MMS_LOCAL_MMSC_RULES)"
                if self.mmsc is not None
                else f"real MMSC {os.environ.get('MMS_MM7_URL', '')}"
            ),
            f"  Carrier routes   {s.api_url}/carrier/mm7/{self.carrier_token}   (reports, MO;"
            " pin the token with MMS_LOCAL_CARRIER_TOKEN)",
            f"  Fallback SMS     simulated gateway (what it sent: {self.settings.data_dir}/sms/)",
            f"  Inbox            {s.api_url}/_inbox/   (what phones got, postbacks, timelines;"
            " a phone's MO: python -m local phone --text yes)",
            f"  Embedded AWS     {endpoint}   (moto; dashboard {endpoint}/moto-api/)",
            f"  Media bucket     s3://{bucket}",
            f"    aws --endpoint-url {endpoint} s3 ls s3://{bucket} --recursive",
            f"    aws --endpoint-url {endpoint} dynamodb scan --table-name "
            f"{self.stack.physical.get('TemplatesTable', '')}",
            "    (any credentials do, e.g. AWS_ACCESS_KEY_ID=testing "
            "AWS_SECRET_ACCESS_KEY=testing; region us-east-1)",
            f"  Logs             stdout, and a copy in {s.log_file}",
            f"  State            {s.state_file}   (read by mmsapi-admin and local.invoke)",
            f"  Kept state       {state_dir(s.data_dir)}   (survives restarts; make local-reset)",
            "",
            "  Functions",
        ]
        for logical_id, function in self.functions.items():
            routes = [r.key for r in self.routes if r.function == logical_id]
            queues = [q for q in self.sources if q.function == logical_id]
            status = "" if function.handler else f"   NOT LOADED: {function.load_error}"
            lines.append(f"    {logical_id}{status}")
            if routes:
                lines.append(f"      HTTP   {', '.join(routes)}")
            for queue in queues:
                name = queue.queue_url.rsplit("/", 1)[-1]
                lines.append(
                    f"      SQS    {name} (batch {queue.batch_size}, "
                    f"failed messages retried after {queue.visibility_timeout} s)"
                )
        lines.extend(f"    note: {note}" for note in self.skipped)
        lines += [
            "",
            "  Try it",
            f"    curl -s {s.api_url}/ep/v1/ -d '<request><action>saveMMS</action>"
            f"<api-key>{self.demo.api_key}</api-key><message-subject>Hello</message-subject>"
            "<name>hello</name><slide><message-text>Hello from mmsapi</message-text></slide>"
            "</request>'",
            "    .venv/bin/python -m local.invoke ApiFunction events/api/save-text-current.json",
            "    .venv/bin/mmsapi-admin list",
            "",
            "  Ctrl-C stops everything.",
            "",
        ]
        return "\n".join(lines)


def load_parameters(template: Path) -> dict[str, Any]:
    from local.stack import load_template

    parameters: dict[str, Any] = load_template(template).get("Parameters", {})
    return parameters


def _install_gate(stack: Stack, gsi_lag_seconds: float) -> Any:
    """The AWS gate: every call checked against its function's translated role, and
    index reads that lag behind writes."""
    from local.aws_gate import AwsGate
    from local.faults import FaultPlan

    gate = AwsGate.for_stack(stack, stack.template, deny=True, gsi_lag_seconds=gsi_lag_seconds)
    gate.install()
    # MMS_LOCAL_AWS_FAULTS=0.1: that fraction of the functions' AWS calls fail (chaos mode).
    faults = FaultPlan.from_env(os.environ.get("MMS_LOCAL_AWS_FAULTS", ""))
    if faults is not None:
        faults.install()
    return gate


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _StopRequestedError(Exception):
    """Ctrl-C or SIGTERM while starting."""


class _Signals:
    """SIGINT and SIGTERM: stop quietly (interrupting start-up if need be)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.starting = True

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested.is_set():
            return  # already stopping
        self.requested.set()
        if self.starting:
            raise _StopRequestedError


def main(argv: list[str] | None = None) -> None:
    arguments = argparse.ArgumentParser(prog="python -m local.runtime", description=__doc__)
    arguments.add_argument("--template", type=Path, help="template.yaml (a copy, say) to run")
    arguments.add_argument(
        "--reset", action="store_true", help="forget the kept state (tables, buckets) and exit"
    )
    given = arguments.parse_args(argv)
    try:
        settings = LocalSettings.from_environ()
        if given.template is not None:
            settings = dataclasses.replace(settings, template=given.template.resolve())
        if given.reset:
            Runtime(settings)._refuse_second_runtime()
            reset(settings.data_dir)
            print(f"mmsapi local: forgot the state kept in {state_dir(settings.data_dir)}")
            return
    except StartupError as exc:
        sys.exit(f"mmsapi local: {exc}")
    log_copy = setup_logging(settings.log_file)
    signals = _Signals()
    signal.signal(signal.SIGINT, signals)
    signal.signal(signal.SIGTERM, signals)
    runtime = Runtime(settings)
    failure = ""
    try:
        log.info("starting (embedded AWS on %s)", settings.aws_endpoint)
        runtime.start()
        signals.starting = False
        if not signals.requested.is_set():
            print(runtime.banner(), flush=True)
            runtime.write_state()
        # Wake up now and then: signal handlers run only between bytecodes of this thread.
        while not signals.requested.wait(0.5):
            pass
        log.info("stopping")
    except _StopRequestedError:
        log.info("interrupted while starting: stopping")
    except (StartupError, TemplateError) as exc:
        failure = str(exc)
    except Exception:
        log.exception("the local runtime could not start")
        failure = "the local runtime could not start (see the error above)"
    finally:
        signals.starting = False
        runtime.stop()
        log_copy.close()
    if failure:
        sys.exit(f"mmsapi local: {failure}")
    log.info("stopped")


if __name__ == "__main__":
    main()
