"""`make local`: the whole system on one laptop, with no AWS account and no Docker.

    .venv/bin/python -m local.runtime

- an embedded AWS (moto's server on loopback) holding every table, bucket, queue,
  bus and rule of template.yaml, created from the template by local.stack;
- the HTTP API: every HttpApi route of every function in the template, turned
  into API Gateway payload-2.0 events for the real handlers, run in-process;
- the SQS event sources of the template, polled and handed to their handlers the
  way Lambda's event source mappings do (failed messages come back after the
  queue's visibility timeout: that is the retry policy);
- a demo account (the documents' sample key, shortcode 28444, service-id 12345).

Settings (environment): MMS_LOCAL_PORT (3000), MMS_LOCAL_AWS_PORT (4566),
MMS_LOCAL_API_KEY, MMS_LOCAL_POSTBACK_URL, MMS_LOCAL_DATA_DIR (.local-data).
While it runs, <data dir>/runtime.json tells mmsapi-admin and local.invoke where
the embedded AWS is.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import importlib.util
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, ModuleType
from typing import IO, TYPE_CHECKING, Any, TextIO, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from local.stack import FunctionSpec, Stack, TemplateError, function_logical_ids, provision

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

STACK_NAME = "mmsapi-local"
REGION = "us-east-1"
SAMPLE_API_KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"  # the documents' sample key
DEMO_SHORTCODE = "28444"
DEMO_COUNTRY = "US"
DEMO_SERVICE_ID = "12345"
# API Gateway refuses larger payloads with 413 before any function runs.
MAX_BODY_BYTES = 10 * 1024 * 1024
# HTTP APIs hand these content types to the function as text; all else is base64.
TEXT_CONTENT_TYPES = ("application/json", "application/xml", "application/javascript")
POLL_WAIT_SECONDS = 1  # short long-polls, so that Ctrl-C is quick
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

log = logging.getLogger("local.runtime")


class StartupError(Exception):
    """The runtime cannot start (port busy, another runtime, bad setting): told as is."""


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class LocalSettings:
    port: int = 3000
    aws_port: int = 4566
    api_key: str = SAMPLE_API_KEY
    postback_url: str = ""
    data_dir: Path = Path(".local-data")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> LocalSettings:
        env = os.environ if environ is None else environ
        return cls(
            port=_port(env, "MMS_LOCAL_PORT", 3000),
            aws_port=_port(env, "MMS_LOCAL_AWS_PORT", 4566),
            api_key=env.get("MMS_LOCAL_API_KEY") or SAMPLE_API_KEY,
            postback_url=env.get("MMS_LOCAL_POSTBACK_URL", ""),
            data_dir=data_dir(env),
        )

    @property
    def state_file(self) -> Path:
        return self.data_dir / "runtime.json"

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
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise StartupError(f"{name}={text!r} is not a port number")
    return int(text)


# ---------------------------------------------------------------- functions


@dataclass
class FakeLambdaContext:
    """What Lambda passes as `context` (the attributes Powertools and handlers read)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    _started: float = field(default_factory=time.monotonic)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{time.strftime('%Y/%m/%d')}/[$LATEST]local"

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_seconds - (time.monotonic() - self._started)
        return max(0, int(left * 1000))


Handler = Callable[[Any, Any], Any]

# On Lambda an execution environment runs one event at a time and belongs to one
# function. Here every function shares one process, hence one Powertools logger (with
# its Lambda-context keys) and one metrics buffer: events take turns, or their log
# lines would carry each other's context.
_ONE_AT_A_TIME = threading.Lock()


@dataclass
class LocalFunction:
    """One AWS::Serverless::Function, its handler imported in this process."""

    spec: FunctionSpec
    name: str
    arn: str
    memory_mb: int
    timeout_seconds: float
    handler: Handler | None = None
    load_error: str = ""

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    def load(self) -> None:
        """Import the handler; a failure is kept and told, like a Lambda that cannot start."""
        try:
            self.handler = import_handler(self.spec)
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("%s cannot be loaded:\n%s", self.logical_id, traceback.format_exc())

    def invoke(self, event: Any) -> Any:
        if self.handler is None:
            raise RuntimeError(f"{self.logical_id} could not be loaded: {self.load_error}")
        asked = time.monotonic()
        with _ONE_AT_A_TIME:
            started = time.monotonic()
            if started - asked > 1:
                log.info(
                    "%s waited %.1f s for another function: here they take turns",
                    self.logical_id,
                    started - asked,
                )
            context = FakeLambdaContext(self.name, self.arn, self.memory_mb, self.timeout_seconds)
            try:
                return self.handler(event, context)
            finally:
                took = time.monotonic() - started
                if took > self.timeout_seconds:
                    # Lambda would have stopped it; locally nothing can stop a thread.
                    log.warning(
                        "%s ran %.1f s, over its Timeout of %.0f s: on AWS it would have failed",
                        self.logical_id,
                        took,
                        self.timeout_seconds,
                    )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "memory_mb": self.memory_mb,
            "timeout_seconds": self.timeout_seconds,
        }


def import_handler(spec: FunctionSpec) -> Handler:
    """The function's Handler, imported by path under a name of its own.

    Every function's module is called `app`: importing them by their plain name
    would make the second one the first.
    """
    path = spec.code_uri.joinpath(*spec.module.split(".")).with_suffix(".py")
    if not path.is_file():
        raise ImportError(f"{path} does not exist (CodeUri + Handler of {spec.logical_id})")
    name = f"mmsapi_local_{spec.logical_id}_{spec.module.replace('.', '_')}"
    module: ModuleType | None = sys.modules.get(name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    handler = getattr(module, spec.attribute, None)
    if not callable(handler):
        raise ImportError(f"{path} has no callable {spec.attribute!r}")
    return cast(Handler, handler)


def _function_setting(stack: Stack, logical_id: str, key: str, default: Any) -> Any:
    """A function property with Globals.Function applied, resolved."""
    own = stack.template["Resources"][logical_id].get("Properties", {})
    shared = stack.template.get("Globals", {}).get("Function", {})
    return stack.resolve(own.get(key, shared.get(key, default)))


def describe_functions(stack: Stack) -> dict[str, LocalFunction]:
    """Every function of the template, not loaded yet."""
    return {
        logical_id: LocalFunction(
            spec=spec,
            name=stack.physical[logical_id],
            arn=stack.arns[logical_id],
            memory_mb=int(_function_setting(stack, logical_id, "MemorySize", 128)),
            timeout_seconds=float(_function_setting(stack, logical_id, "Timeout", 3)),
        )
        for logical_id, spec in function_logical_ids().items()
    }


def function_environment(stack: Stack) -> dict[str, str]:
    """Every function's environment in one: they all share this process."""
    merged: dict[str, str] = {}
    for logical_id in function_logical_ids():
        for name, value in stack.function_environment(logical_id).items():
            if name in merged and merged[name] != value:
                log.warning(
                    "%s: %s=%r differs from another function's %r; locally one value is used",
                    logical_id,
                    name,
                    value,
                    merged[name],
                )
            merged.setdefault(name, value)
    merged.update(
        {
            # Only the local runtime fetches media from loopback (pytest-httpserver, http.server).
            "MMS_ALLOW_LOOPBACK_MEDIA": "true",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_NAMESPACE": "mmsapi-local",
        }
    )
    return merged


def reset_product_caches() -> None:
    """Forget settings, clients and stores read before the environment was complete."""
    from mmsapi.services import context as context_module
    from mmsapi.settings import get_settings
    from mmsapi.store import aws

    get_settings.cache_clear()
    aws.reset()
    context_module.reset()


# ---------------------------------------------------------------- HTTP API routes


_PARAMETER = re.compile(r"\{([^}/]+)\}")


@dataclass(frozen=True)
class Route:
    """One HttpApi event of a function: `POST /ep/v1`, `ANY /items/{id}` or `$default`."""

    method: str  # upper case; ANY matches every method
    path: str  # as in the template, or "$default"
    function: str  # logical id

    @property
    def key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def _pattern(self) -> re.Pattern[str]:
        parts: list[str] = []
        position = 0
        for match in _PARAMETER.finditer(self.path):
            parts.append(re.escape(self.path[position : match.start()]))
            name = match.group(1)
            if name.endswith("+"):  # greedy: {proxy+} takes the rest of the path
                parts.append(f"(?P<{_group(name[:-1])}>.+)")
            else:
                parts.append(f"(?P<{_group(name)}>[^/]+)")
            position = match.end()
        parts.append(re.escape(self.path[position:]))
        return re.compile("".join(parts))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when this route takes the request, else None."""
        if self.path == "$default":
            return {}
        if self.method not in ("ANY", method):
            return None
        found = self._pattern.fullmatch(path)
        if found is None:
            return None
        names = [name.rstrip("+") for name in _PARAMETER.findall(self.path)]
        return {name: found.group(_group(name)) for name in names}

    @property
    def rank(self) -> tuple[int, int, int, int]:
        # API Gateway prefers exact paths, then more literal segments, greedy last.
        greedy = "+}" in self.path
        params = len(_PARAMETER.findall(self.path))
        literal = self.path.count("/") - params
        return (self.path == "$default", greedy, -literal, self.method == "ANY")


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def routes_from_template(template: Mapping[str, Any]) -> list[Route]:
    """Every HttpApi event of every function, most specific first."""
    routes: list[Route] = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties") or {}
            path = props.get("Path")
            method = str(props.get("Method", "ANY")).upper()
            if not path:  # no path: the API's catch-all
                routes.append(Route("ANY", "$default", logical_id))
            else:
                any_method = method in ("*", "X-AMAZON-APIGATEWAY-ANY-METHOD")
                routes.append(Route("ANY" if any_method else method, str(path), logical_id))
    return sorted(routes, key=lambda route: route.rank)


def find_route(
    routes: Iterable[Route], method: str, path: str
) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway picks: an explicit one (`/ep/v1/` finds `/ep/v1`), else $default."""
    ordered = list(routes)
    paths = [path]
    if len(path) > 1 and path.endswith("/"):
        # HTTP API routes cannot end in "/": API Gateway routes /ep/v1/ to /ep/v1.
        paths.append(path.rstrip("/") or "/")
    for candidate in paths:
        for route in ordered:
            if route.path == "$default":
                continue
            parameters = route.match(method, candidate)
            if parameters is not None:
                return route, parameters
    default = next((route for route in ordered if route.path == "$default"), None)
    return None if default is None else (default, {})


# ---------------------------------------------------------------- events


def _is_text(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_CONTENT_TYPES


def http_event(
    *,
    route: Route,
    path_parameters: Mapping[str, str],
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    protocol: str,
    account_id: str,
    now: float | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as AWS builds it."""
    now = time.time() if now is None else now
    split = urlsplit(target)
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[lower] = f"{joined[lower]},{value}" if lower in joined else value
    joined["x-forwarded-for"] = (
        f"{joined['x-forwarded-for']}, {source_ip}" if "x-forwarded-for" in joined else source_ip
    )
    joined.setdefault("x-forwarded-proto", "http")
    request_id = uuid.uuid4().hex[:16]
    host = joined.get("host", "127.0.0.1").split(":", 1)[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": split.path,
        "rawQueryString": split.query,
        "headers": joined,
        "requestContext": {
            "accountId": account_id,
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": method,
                "path": unquote(split.path),
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if split.query:
        # Repeated parameters arrive comma-joined, as API Gateway does.
        query: dict[str, str] = {}
        for name, value in parse_qsl(split.query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        text: str | None = None
        if _is_text(joined.get("content-type", "")):
            with contextlib.suppress(UnicodeDecodeError):
                text = body.decode("utf-8")
        if text is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


@dataclass
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_answer(status: int, message: str) -> HttpAnswer:
    body = json.dumps({"message": message}).encode()
    return HttpAnswer(status, [("Content-Type", "application/json")], body)


def http_answer(result: Any) -> HttpAnswer:
    """A payload-2.0 function result as API Gateway turns it into an HTTP answer."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Without statusCode the whole result is the JSON body of a 200.
        return HttpAnswer(200, [("Content-Type", "application/json")], json.dumps(result).encode())
    headers = [
        (str(name), str(value))
        for name, value in (result.get("headers") or {}).items()
        if str(name).lower() not in ("content-length", "transfer-encoding", "connection")
    ]
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw = result.get("body")
    text = raw if isinstance(raw, str) else ("" if raw is None else json.dumps(raw))
    if result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            log.error("the function answered isBase64Encoded with a body that is not base64")
            return _json_answer(500, "Internal Server Error")
    else:
        body = text.encode("utf-8")
    return HttpAnswer(int(result["statusCode"]), headers, body)


def sqs_event(messages: Iterable[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """A Lambda event from SQS messages, shaped like the event source mapping's."""
    records = []
    for message in messages:
        attributes = {str(k): str(v) for k, v in message.get("Attributes", {}).items()}
        message_attributes: dict[str, Any] = {}
        for name, value in message.get("MessageAttributes", {}).items():
            item: dict[str, Any] = {
                "dataType": value.get("DataType", "String"),
                "stringListValues": [],
                "binaryListValues": [],
            }
            if "StringValue" in value:
                item["stringValue"] = value["StringValue"]
            if "BinaryValue" in value:
                item["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
            message_attributes[name] = item
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message.get("Body", ""),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def failed_message_ids(result: Any, message_ids: list[str], report_failures: bool) -> set[str]:
    """The messages to leave on the queue, as Lambda reads a function's answer."""
    if not report_failures or result is None:
        return set()
    if not isinstance(result, dict):
        return set(message_ids)  # an answer Lambda cannot read fails the batch
    failures = result.get("batchItemFailures") or []
    failed: set[str] = set()
    for failure in failures if isinstance(failures, list) else [None]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in message_ids:
            return set(message_ids)  # an unknown or empty identifier fails the whole batch
        failed.add(identifier)
    return failed


# ---------------------------------------------------------------- the HTTP server


class LocalApi:
    """The API Gateway of the template: route, build the event, invoke, answer."""

    def __init__(
        self, routes: list[Route], functions: Mapping[str, LocalFunction], account_id: str
    ) -> None:
        self.routes = routes
        self.functions = functions
        self.account_id = account_id

    def handle(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        source_ip: str,
        protocol: str,
    ) -> HttpAnswer:
        path = unquote(urlsplit(target).path)
        found = find_route(self.routes, method, path)
        if found is None:
            log.info("no route for %s %s (routes come from template.yaml)", method, path)
            return _json_answer(404, "Not Found")
        route, parameters = found
        event = http_event(
            route=route,
            path_parameters=parameters,
            method=method,
            target=target,
            headers=headers,
            body=body,
            source_ip=source_ip,
            protocol=protocol,
            account_id=self.account_id,
        )
        function = self.functions[route.function]
        try:
            result = function.invoke(event)
        except Exception:
            log.exception("%s failed on %s", route.function, route.key)
            return _json_answer(500, "Internal Server Error")
        try:
            return http_answer(result)
        except (TypeError, ValueError):
            log.exception("%s answered something API Gateway cannot read", route.function)
            return _json_answer(500, "Internal Server Error")


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: LocalApi | None = None) -> None:
        super().__init__(address, ApiRequestHandler)
        self.api = api


class _BodyTooLargeError(Exception):
    pass


class ApiRequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1: keep-alive, and curl's `Expect: 100-continue` is answered at once.
    protocol_version = "HTTP/1.1"
    server_version = "mmsapi-local"

    def _dispatch(self) -> None:
        started = time.monotonic()
        server = cast(ApiServer, self.server)
        try:
            body = self._read_body()
        except _BodyTooLargeError:
            self.close_connection = True
            answer = _json_answer(413, "Request Entity Too Large")
        except ValueError:
            self.close_connection = True
            answer = _json_answer(400, "Bad Request")
        else:
            if server.api is None:  # bound, not started yet
                answer = _json_answer(503, "Service Unavailable")
            else:
                answer = server.api.handle(
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    self.client_address[0],
                    self.request_version,
                )
        self._write(answer)
        log.info(
            "%s %s -> %d (%d ms)",
            self.command,
            self.path if len(self.path) < 120 else self.path[:117] + "...",
            answer.status,
            (time.monotonic() - started) * 1000,
        )

    # Every method goes to the router, which answers 404 for the ones without a route.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch  # noqa: N815

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it.
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._write(_json_answer(413, "Request Entity Too Large"))
            return False
        return super().handle_expect_100()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length", "0").strip() or "0"
        if not length_text.isdigit():
            raise ValueError("bad Content-Length")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise _BodyTooLargeError
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            size = int(size_line, 16)  # ValueError: a bad request
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyTooLargeError
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)  # the CRLF after each chunk

    def _write(self, answer: HttpAnswer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)  # one line per request is written by _dispatch

    def log_error(self, format: str, *args: Any) -> None:
        log.warning(format, *args)


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


# ---------------------------------------------------------------- SQS event sources


@dataclass(frozen=True)
class QueueSource:
    """One SQS event of a function (an event source mapping on AWS)."""

    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    visibility_timeout: str


def queue_sources(stack: Stack) -> tuple[list[QueueSource], list[str]]:
    """The SQS events of every function, and a note for each event not emulated."""
    sources: list[QueueSource] = []
    skipped: list[str] = []
    by_arn = {arn: logical_id for logical_id, arn in stack.arns.items()}
    for logical_id, resource in stack.template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
            kind = event.get("Type")
            if kind == "HttpApi":
                continue
            props = stack.resolve(event.get("Properties") or {})
            if kind != "SQS":
                skipped.append(f"{logical_id}.{event_name} ({kind}) is not emulated locally")
                continue
            if str(props.get("Enabled", True)).lower() == "false":
                continue
            queue = by_arn.get(str(props.get("Queue")))
            if queue is None or queue not in stack.physical:
                skipped.append(
                    f"{logical_id}.{event_name}: queue {props.get('Queue')} is not local"
                )
                continue
            queue_props = stack.resolve(stack.template["Resources"][queue].get("Properties", {}))
            sources.append(
                QueueSource(
                    function=logical_id,
                    queue_url=stack.physical[queue],
                    queue_arn=stack.arns[queue],
                    batch_size=max(1, min(10, int(props.get("BatchSize", 10)))),
                    report_failures="ReportBatchItemFailures"
                    in (props.get("FunctionResponseTypes") or []),
                    visibility_timeout=str(queue_props.get("VisibilityTimeout", 30)),
                )
            )
    return sources, skipped


class QueuePoller(threading.Thread):
    """Lambda's SQS event source mapping: receive, invoke, delete what succeeded."""

    def __init__(
        self, source: QueueSource, function: LocalFunction, stop: threading.Event, region: str
    ) -> None:
        super().__init__(name=f"poll-{source.function}", daemon=True)
        self.source = source
        self.function = function
        self.stop = stop
        self.region = region

    def run(self) -> None:
        sqs: SQSClient = boto3.session.Session().client("sqs", region_name=self.region)
        while not self.stop.is_set():
            try:
                answer = sqs.receive_message(
                    QueueUrl=self.source.queue_url,
                    MaxNumberOfMessages=self.source.batch_size,
                    WaitTimeSeconds=POLL_WAIT_SECONDS,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except (BotoCoreError, ClientError) as exc:
                if not self.stop.is_set():
                    log.warning("polling %s failed: %s", self.source.queue_url, exc)
                    self.stop.wait(1)
                continue
            messages = answer.get("Messages", [])
            if messages:
                try:
                    self.deliver(sqs, messages)
                except Exception:  # the poller outlives any one batch
                    log.exception("delivering a batch to %s failed", self.function.logical_id)

    def deliver(self, sqs: SQSClient, messages: list[MessageTypeDef]) -> None:
        ids = [message["MessageId"] for message in messages]
        event = sqs_event(messages, self.source.queue_arn, self.region)
        try:
            result = self.function.invoke(event)
        except Exception:
            log.exception(
                "%s failed on %d message(s); they come back after %s s",
                self.function.logical_id,
                len(messages),
                self.source.visibility_timeout,
            )
            return
        failed = failed_message_ids(result, ids, self.source.report_failures)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=self.source.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(done)
                ],
            )
        if failed:
            log.info(
                "%s: %d message(s) failed; they come back after the queue's "
                "visibility timeout (%s s)",
                self.function.logical_id,
                len(failed),
                self.source.visibility_timeout,
            )


# ---------------------------------------------------------------- logs


class _Tee:
    """stdout (or stderr) that also copies everything into the log file."""

    def __init__(self, stream: TextIO, copy: IO[str], lock: threading.Lock) -> None:
        self._stream = stream
        self._copy = copy
        self._lock = lock

    def write(self, text: str) -> int:
        with self._lock:
            self._stream.write(text)
            self._stream.flush()
            if not self._copy.closed:
                self._copy.write(text)
                self._copy.flush()
        return len(text)

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
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
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
        self.threads: list[threading.Thread] = []
        self.stack: Stack | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.routes: list[Route] = []
        self.sources: list[QueueSource] = []
        self.skipped: list[str] = []
        self.environment: dict[str, str] = {}
        self.demo: DemoAccount | None = None
        self.serving = False
        self.state_written = False

    # ------------------------------------------------------------ start

    def start(self) -> None:
        settings = self.settings
        self._refuse_second_runtime()
        self.api_server = bind_api_server(settings.port)
        check_port_free(settings.aws_port, "MMS_LOCAL_AWS_PORT")
        self._start_aws()
        self.stack = provision(STACK_NAME)
        self.environment = function_environment(self.stack)
        os.environ.update(self.environment)
        reset_product_caches()
        self.demo = self._create_demo_account()
        self.functions = describe_functions(self.stack)
        for function in self.functions.values():
            function.load()
        self.routes = routes_from_template(self.stack.template)
        self.sources, self.skipped = queue_sources(self.stack)
        for source in self.sources:
            function = self.functions[source.function]
            if function.handler is None:
                log.error("not polling %s: %s is not loaded", source.queue_url, source.function)
                continue
            poller = QueuePoller(source, function, self.stop_event, self.stack.region)
            poller.start()
            self.threads.append(poller)
        self.api_server.api = LocalApi(self.routes, self.functions, self.stack.account_id)
        serving = threading.Thread(
            target=self.api_server.serve_forever, kwargs={"poll_interval": 0.2}, name="api"
        )
        serving.daemon = True
        serving.start()
        self.serving = True

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
        self.moto = ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.settings.aws_port, verbose=False
        )
        self.moto.start()

    def _create_demo_account(self) -> DemoAccount:
        from mmsapi.models import Shortcode
        from mmsapi.services.accounts import create_account
        from mmsapi.store.accounts import AccountStore

        account, key = create_account(
            AccountStore(),
            "demo",
            shortcodes=[Shortcode(code=DEMO_SHORTCODE, country=DEMO_COUNTRY)],
            service_id=DEMO_SERVICE_ID,
            postback_url=self.settings.postback_url,
            api_key=self.settings.api_key,
        )
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
            "demo_account": {
                "account_id": self.demo.account_id,
                "shortcode": f"{DEMO_SHORTCODE}:{DEMO_COUNTRY}",
                "service_id": DEMO_SERVICE_ID,
                "postback_url": self.demo.postback_url,
                "postback_secret": self.demo.postback_secret,
            },
            "environment": self.environment,
            "functions": {name: f.describe() for name, f in self.functions.items()},
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

    # ------------------------------------------------------------ stop

    def stop(self) -> None:
        self.stop_event.set()
        if self.api_server is not None:
            if self.serving:
                self.api_server.shutdown()
            self.api_server.server_close()
        for thread in self.threads:
            thread.join(timeout=POLL_WAIT_SECONDS + 3)
        if self.moto is not None:
            with contextlib.suppress(Exception):
                self.moto.stop()
        if self.state_written:
            self.settings.state_file.unlink(missing_ok=True)

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
            "  Postback URL     " + (self.demo.postback_url or "none: set MMS_LOCAL_POSTBACK_URL"),
            f"  Postback secret  {self.demo.postback_secret}",
            "                   (X-MMS-Signature: sha256=HMAC-SHA256 of the body with it)",
            f"  Embedded AWS     {endpoint}   (moto; dashboard {endpoint}/moto-api/)",
            f"  Media bucket     s3://{bucket}",
            f"    aws --endpoint-url {endpoint} s3 ls s3://{bucket} --recursive",
            f"    aws --endpoint-url {endpoint} dynamodb scan --table-name "
            f"{self.stack.physical.get('TemplatesTable', '')}",
            "    (any credentials do, e.g. AWS_ACCESS_KEY_ID=testing "
            "AWS_SECRET_ACCESS_KEY=testing; region us-east-1)",
            f"  Logs             stdout, and a copy in {s.log_file}",
            f"  State            {s.state_file}   (read by mmsapi-admin and local.invoke)",
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


def main() -> None:
    try:
        settings = LocalSettings.from_environ()
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
