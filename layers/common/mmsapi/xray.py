"""X-Ray without the X-Ray SDK: subsegment documents sent to the daemon over UDP.

The SDK costs 60-150 ms of CPU at every cold start (aws_xray_sdk.core, wrapt, its
patchers); what a Lambda function needs of it is small. On Lambda the function's segment
is Lambda's own (a facade): `_X_AMZN_TRACE_ID` (Root=...;Parent=...;Sampled=...), which
the runtime sets for each invocation, names the trace and the parent. Each subsegment is
sent on its own, as an independent subsegment document (type "subsegment", trace_id,
parent_id), one per datagram after the daemon's header line, to AWS_XRAY_DAEMON_ADDRESS.
The document format: docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html.

`XRayProvider` is Powertools Tracer's provider (tracer.capture_lambda_handler opens
"## handler" with it). The open subsegment is a ContextVar: asyncio tasks and threads
started with contextvars.copy_context() (asyncio.to_thread) nest under theirs.
`patch(("botocore", "httplib"))` records every AWS call (botocore events, on every
botocore session created afterwards) and every request through the network guard
(customers' and carriers' servers) as subsegments.

Fire and forget: nothing here ever fails the function. No daemon, a full socket buffer, a
document over 64 kB (trimmed first, then dropped): counted, and said in a debug line.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from mmsapi.redact import redact
from mmsapi.settings import runtime_variable

log = logging.getLogger(__name__)

# The daemon's protocol: this header line, then one segment document, per datagram.
HEADER: Final = b'{"format": "json", "version": 1}\n'
DEFAULT_DAEMON: Final = "127.0.0.1:2000"
# "A segment document can be up to 64 kB"; also below UDP's 65,507-byte payload.
MAX_DOCUMENT: Final = 64_000
# The Lambda runtime's per-invocation variables (not settings: they change per invocation
# or are Lambda's own, so they are read here, where they are used).
TRACE_ENV: Final = "_X_AMZN_TRACE_ID"
DAEMON_ENV: Final = "AWS_XRAY_DAEMON_ADDRESS"
TRACE_HEADER: Final = "X-Amzn-Trace-Id"

# Document limits: names up to 200 characters of these; other strings up to 250.
_NAME_CHARS: Final = re.compile(r"[^\w\s.:/%&#=+\\\-@]")
_NAME_MAX: Final = 200
_STRING_MAX: Final = 250
# Annotation keys: alphanumeric and underscore only (else X-Ray cannot filter on them).
_KEY_CHARS: Final = re.compile(r"[^A-Za-z0-9_]")
_MAX_ANNOTATIONS: Final = 50
_MAX_FRAMES: Final = 30
# A URL's query is never sent (tokens, presigned signatures): everything from "?" to the
# end of a URL or an absolute path, in every string of the document (metadata included),
# cut before the document is serialised (JSON escapes would hide where a URL ends).
_URL_QUERY: Final = re.compile(r"""((?:https?://|(?<![\w/])/)[^\s"'<>?#]*)\?[^\s<>#]*""", re.I)
# Metadata nested deeper than this is cut (a document is a few levels deep).
_MAX_DEPTH: Final = 16

TRACE_ID: Final = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
ENTITY_ID: Final = re.compile(r"^[0-9a-f]{16}$")


def new_id() -> str:
    """A 64-bit id in 16 hex digits (subsegments, exceptions)."""
    return os.urandom(8).hex()


@dataclass(frozen=True)
class TraceContext:
    """What Lambda's trace header says of this invocation."""

    root: str
    parent: str
    sampled: bool


def parse_trace_header(value: str | None) -> TraceContext | None:
    """Root=1-...;Parent=...;Sampled=1 (any order, other keys ignored); None if unusable."""
    if not value:
        return None
    parts = dict(
        item.strip().split("=", 1) for item in value.split(";") if "=" in item and item.strip()
    )
    root, parent = parts.get("Root", ""), parts.get("Parent", "")
    if not TRACE_ID.match(root) or not ENTITY_ID.match(parent):
        return None
    return TraceContext(root, parent, parts.get("Sampled") == "1")


def parse_daemon_address(value: str | None) -> tuple[str, int]:
    """The daemon's UDP address from "host:port" or "tcp:host:port udp:host:port"."""
    text = (value or "").strip() or DEFAULT_DAEMON
    forms = text.split()
    if len(forms) == 2:
        chosen = [f for f in forms if f.startswith("udp:")]
        if len(chosen) != 1:
            raise ValueError(f"invalid X-Ray daemon address {text!r}")
        text = chosen[0].removeprefix("udp:")
    elif len(forms) != 1:
        raise ValueError(f"invalid X-Ray daemon address {text!r}")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"invalid X-Ray daemon address {text!r}")
    return host, int(port)


def daemon_address() -> tuple[str, int]:
    """Where the daemon listens: AWS_XRAY_DAEMON_ADDRESS (Lambda sets it), else the default."""
    try:
        return parse_daemon_address(runtime_variable(DAEMON_ENV))
    except ValueError as exc:
        log.debug("%s: using %s", exc, DEFAULT_DAEMON)
        return parse_daemon_address(DEFAULT_DAEMON)


class Emitter:
    """Sends documents to the daemon, one datagram each; never raises."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sent = 0
        self.dropped = 0
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    def send(self, document: Mapping[str, Any]) -> bool:
        try:
            data = _encode(document)
        except Exception as exc:  # never the function's failure: the document is dropped
            self._drop(f"not encoded: {exc!r}", document)
            return False
        if data is None:
            self._drop("over 64 kB even without metadata and stack", document)
            return False
        try:
            self._sock().sendto(HEADER + data, self.address)
        except OSError as exc:  # no daemon, buffer full, bad address: the work goes on
            self._drop(f"not sent: {exc}", document)
            return False
        self.sent += 1
        return True

    def _sock(self) -> socket.socket:
        with self._lock:
            if self._socket is None:
                family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.setblocking(False)  # a datagram is queued or refused, never waited on
                self._socket = sock
            return self._socket

    def _drop(self, why: str, document: Mapping[str, Any]) -> None:
        self.dropped += 1
        log.debug(
            "X-Ray document dropped (%d so far): %s (%s)", self.dropped, why, document.get("name")
        )

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


def _cut(value: Any, depth: int = 0) -> Any:
    """The value with every string's URL queries cut, anything else as its str, and
    nothing nested deeper than _MAX_DEPTH."""
    if isinstance(value, str):
        return _URL_QUERY.sub(r"\1", value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return "[too deep]"
    if isinstance(value, Mapping):
        return {str(k): _cut(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cut(v, depth + 1) for v in value]
    return _URL_QUERY.sub(r"\1", str(value))


def _encode(document: Mapping[str, Any]) -> bytes | None:
    """The document as sent: redacted, URL queries cut, within MAX_DOCUMENT (metadata,
    then the exception stacks, go first when it is too large)."""
    attempts: list[Mapping[str, Any]] = [document]
    if "metadata" in document:
        attempts.append({k: v for k, v in document.items() if k != "metadata"})
    if "cause" in document:
        bare = dict(attempts[-1])
        bare["cause"] = {
            **document["cause"],
            "exceptions": [
                {k: v for k, v in e.items() if k != "stack"}
                for e in document["cause"].get("exceptions", [])
            ],
        }
        attempts.append(bare)
    for attempt in attempts:
        try:
            text = json.dumps(_cut(attempt), separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError):  # NaN, a cycle: try without metadata
            continue
        data = redact(text).encode("utf-8")
        if len(data) <= MAX_DOCUMENT:
            return data
    return None


@dataclass(eq=False)
class Subsegment(BaseSegment):
    """One subsegment, sent as an independent document when it closes (if sampled)."""

    name: str
    trace_id: str
    parent_id: str
    sampled: bool
    namespace: str | None = None
    id: str = field(default_factory=new_id)
    start_time: float = field(default_factory=time.time)
    end_time: float | None = None
    annotations: dict[str, str | int | float | bool] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    aws: dict[str, Any] = field(default_factory=dict)
    http: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: bool = False
    throttle: bool = False
    fault: bool = False
    cause: dict[str, Any] | None = None

    def child(self, name: str, namespace: str | None = None) -> Subsegment:
        return Subsegment(_name(name), self.trace_id, self.id, self.sampled, namespace)

    def rename(self, name: str) -> None:
        self.name = _name(name)

    def trace_header(self) -> str:
        """The X-Amzn-Trace-Id of a call made inside this subsegment."""
        return f"Root={self.trace_id};Parent={self.id};Sampled={int(self.sampled)}"

    def close(self, end_time: int | None = None) -> None:
        self.end_time = max(self.start_time, float(end_time) if end_time else time.time())

    def add_subsegment(self, subsegment: Any) -> None:
        return None  # each subsegment is its own document, linked by parent_id

    def remove_subsegment(self, subsegment: Any) -> None:
        return None

    def put_annotation(self, key: str, value: str | Any | bool) -> None:
        key = _KEY_CHARS.sub("_", str(key))[:_STRING_MAX]
        if not key or (key not in self.annotations and len(self.annotations) >= _MAX_ANNOTATIONS):
            log.debug("X-Ray annotation %r left out", key)
            return
        if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
            self.annotations[key] = value
        else:
            self.annotations[key] = str(value)[:_STRING_MAX]

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        space = namespace or "default"
        if space.startswith("AWS."):  # reserved for AWS's own SDKs
            space = f"_{space}"
        self.metadata.setdefault(space, {})[str(key)] = value

    def add_exception(
        self, exception: BaseException, stack: Any = None, remote: bool = False
    ) -> None:
        self.fault = True
        frames = traceback.extract_tb(exception.__traceback__)
        described = {
            "id": new_id(),
            "type": type(exception).__name__,
            "message": str(exception)[: _STRING_MAX * 4],
            "remote": remote,
            "stack": [
                {"path": f.filename, "line": f.lineno, "label": f.name}
                for f in frames[-_MAX_FRAMES:]
            ],
        }
        if len(frames) > _MAX_FRAMES:
            described["truncated"] = len(frames) - _MAX_FRAMES
        self.cause = {"working_directory": os.getcwd(), "exceptions": [described]}

    def set_status(self, status: int) -> None:
        """The HTTP status of a downstream call, and the error flags it means."""
        self.http.setdefault("response", {})["status"] = status
        if 400 <= status < 500:
            self.error = True
            self.throttle = self.throttle or status == 429
        elif status >= 500:
            self.fault = True

    def document(self) -> dict[str, Any]:
        """The independent subsegment document (only the fields that apply)."""
        doc: dict[str, Any] = {
            "name": self.name,
            "id": self.id,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "type": "subsegment",
            "start_time": self.start_time,
            "end_time": self.end_time if self.end_time is not None else time.time(),
        }
        if self.namespace:
            doc["namespace"] = self.namespace
        for key in ("annotations", "metadata", "aws", "http"):
            value = getattr(self, key)
            if value:
                doc[key] = value
        for flag in ("error", "throttle", "fault"):
            if getattr(self, flag):
                doc[flag] = True
        if self.cause is not None:
            doc["cause"] = self.cause
        return doc


def _name(name: str) -> str:
    return _NAME_CHARS.sub("", name).strip()[:_NAME_MAX] or "unnamed"


# The innermost open subsegment of this context (None: none open, record nothing).
_current: ContextVar[Subsegment | None] = ContextVar("mmsapi_xray_subsegment", default=None)


def current() -> Subsegment | None:
    return _current.get()


class XRayProvider(BaseProvider):
    """Powertools Tracer's provider: subsegments straight to the X-Ray daemon."""

    def __init__(
        self, emitter: Emitter, trace_header: Callable[[], str | None] | None = None
    ) -> None:
        self.emitter = emitter
        # Read at each top-level subsegment: Lambda sets it for every invocation.
        self._trace_header = trace_header or (lambda: runtime_variable(TRACE_ENV))

    def start(self, name: str, namespace: str | None = None) -> Subsegment | None:
        """A subsegment under the current one or, at the top, under Lambda's segment."""
        parent = _current.get()
        if parent is not None:
            return parent.child(name, namespace)
        trace = parse_trace_header(self._trace_header())
        if trace is None:
            return None
        return Subsegment(_name(name), trace.root, trace.parent, trace.sampled, namespace)

    def finish(self, subsegment: Subsegment) -> None:
        if subsegment.end_time is None:
            subsegment.close()
        if subsegment.sampled:
            self.emitter.send(subsegment.document())

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        subsegment = self.start(str(name or "subsegment"))
        if subsegment is None:  # no trace (outside an invocation): record nothing
            yield _Detached()
            return
        token = _current.set(subsegment)
        try:
            yield subsegment
        except BaseException as exc:
            subsegment.add_exception(exc)
            raise
        finally:
            _current.reset(token)
            self.finish(subsegment)

    def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> Any:
        raise NotImplementedError("no async subsegments in this code base")

    def put_annotation(self, key: str, value: Any) -> None:
        subsegment = _current.get()
        if subsegment is not None:
            subsegment.put_annotation(key, value)

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        subsegment = _current.get()
        if subsegment is not None:
            subsegment.put_metadata(key, value, namespace)

    def patch(self, modules: Sequence[str]) -> None:
        for module in modules:
            _PATCHERS[module](self)

    def patch_all(self) -> None:
        self.patch(tuple(_PATCHERS))


class _Detached(Subsegment):
    """Handed out where no trace applies: takes everything, sends nothing."""

    def __init__(self) -> None:
        super().__init__("detached", "", "", sampled=False)


# ---------------------------------------------------------------- AWS calls (botocore)

# The provider the hooks record with (the latest one patched); none: they record nothing.
_recording: dict[str, XRayProvider] = {}
_CONTEXT_KEY: Final = "mmsapi_xray"


def _recorder() -> XRayProvider | None:
    return _recording.get("provider")


def _aws_resources(params: Mapping[str, Any]) -> dict[str, Any]:
    """The table, queue or bucket a call names (as the X-Ray SDKs record them)."""
    found: dict[str, Any] = {}
    for param, key in (
        ("TableName", "table_name"),
        ("QueueUrl", "queue_url"),
        ("Bucket", "bucket_name"),
    ):
        if isinstance(params.get(param), str):
            found[key] = params[param]
    tables = set()
    if isinstance(params.get("RequestItems"), Mapping):
        tables.update(params["RequestItems"])
    for item in params.get("TransactItems") or ():
        for action in item.values() if isinstance(item, Mapping) else ():
            if isinstance(action, Mapping) and isinstance(action.get("TableName"), str):
                tables.add(action["TableName"])
    if tables:
        found["table_names"] = sorted(tables)
    return found


def _on_parameter_build(
    params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
) -> None:
    provider = _recorder()
    if provider is None or _current.get() is None:
        return
    subsegment = provider.start(model.service_model.endpoint_prefix, "aws")
    if subsegment is None or not subsegment.sampled:
        return
    subsegment.aws = {
        "operation": model.name,
        "region": context.get("client_region"),
        **_aws_resources(params),
    }
    context[_CONTEXT_KEY] = subsegment


def _on_call(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    subsegment = context.get(_CONTEXT_KEY)
    if isinstance(subsegment, Subsegment):
        # As the SDK: the call's own subsegment is the parent of what AWS records.
        params.setdefault("headers", {})[TRACE_HEADER] = subsegment.trace_header()


def _on_after_call(http_response: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
    subsegment = context.pop(_CONTEXT_KEY, None)
    provider = _recorder()
    if not isinstance(subsegment, Subsegment) or provider is None:
        return
    meta = parsed.get("ResponseMetadata", {}) if isinstance(parsed, Mapping) else {}
    if meta.get("RequestId"):
        subsegment.aws["request_id"] = meta["RequestId"]
    headers = meta.get("HTTPHeaders") or {}
    if headers.get("x-amz-id-2"):  # S3's second request id
        subsegment.aws["id_2"] = headers["x-amz-id-2"]
    subsegment.aws["retries"] = int(meta.get("RetryAttempts") or 0)
    status = getattr(http_response, "status_code", None) or meta.get("HTTPStatusCode")
    if isinstance(status, int):
        subsegment.set_status(status)
        length = headers.get("content-length")
        if isinstance(length, str) and length.isdigit():
            subsegment.http["response"]["content_length"] = int(length)
        if status >= 300:
            error = parsed.get("Error", {}) if isinstance(parsed, Mapping) else {}
            subsegment.cause = {
                "exceptions": [
                    {
                        "id": new_id(),
                        "type": str(error.get("Code") or status),
                        "message": str(error.get("Message") or "")[: _STRING_MAX * 4],
                        "remote": True,
                    }
                ]
            }
    provider.finish(subsegment)


def _on_call_error(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    subsegment = context.pop(_CONTEXT_KEY, None)
    provider = _recorder()
    if isinstance(subsegment, Subsegment) and provider is not None:
        subsegment.add_exception(exception, remote=True)
        provider.finish(subsegment)


_BOTOCORE_HOOKS: Final[tuple[tuple[str, Callable[..., Any]], ...]] = (
    ("before-parameter-build", _on_parameter_build),
    ("before-call", _on_call),
    ("after-call", _on_after_call),
    ("after-call-error", _on_call_error),
)


def _patch_botocore(provider: XRayProvider) -> None:
    # Every botocore session registers BUILTIN_HANDLERS when it is created: every client
    # made from now on (store/aws.py makes them lazily, after this) records its calls.
    from botocore import handlers

    for hook in _BOTOCORE_HOOKS:
        if hook not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(hook)
    _record_with(provider)


# ---------------------------------------------------------------- HTTP (network guard)


def public_url(scheme: str, host: str, port: int, request_target: str) -> str:
    """scheme://host[:port]/path: never the query (tokens) nor credentials."""
    shown = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}.get(scheme)
    authority = shown if port == default else f"{shown}:{port}"
    path = request_target.split("?", 1)[0].split("#", 1)[0] or "/"
    return f"{scheme}://{authority}{path}"


def _patch_httplib(provider: XRayProvider) -> None:
    # Every request to a customer's or carrier's server (media fetch, MM7, SMS gateway,
    # postbacks) is one exchange of the network guard, per hop.
    from mmsapi.media import guard

    if not hasattr(guard._exchange, "__wrapped__"):
        guard._exchange = _traced_exchange(guard._exchange)
    _record_with(provider)


def _traced_exchange(exchange: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(exchange)
    def traced(method: str, target: Any, *args: Any, **kwargs: Any) -> Any:
        provider = _recorder()
        subsegment = provider.start(target.host, "remote") if provider and _current.get() else None
        if provider is None or subsegment is None or not subsegment.sampled:
            return exchange(method, target, *args, **kwargs)
        url = public_url(target.scheme, target.host, target.port, target.request_target)
        subsegment.http["request"] = {"method": method, "url": url}
        try:
            response = exchange(method, target, *args, **kwargs)
        except BaseException as exc:
            subsegment.add_exception(exc, remote=True)
            provider.finish(subsegment)
            raise
        subsegment.set_status(int(response.status))
        provider.finish(subsegment)
        return response

    return traced


_PATCHERS: Final[dict[str, Callable[[XRayProvider], None]]] = {
    "botocore": _patch_botocore,
    "httplib": _patch_httplib,
}


def _record_with(provider: XRayProvider) -> None:
    _recording["provider"] = provider


def stop_recording() -> None:
    """The hooks record nothing from now on (tests that turn tracing off again)."""
    _recording.clear()
