"""The HTTP API of template.yaml, served the way API Gateway (HTTP API) serves it.

Each HttpApi event of a function is a Route; a request finds its route like API
Gateway does, becomes a payload-2.0 event for the function, and the function's
result becomes the HTTP answer.

    api = LocalApi(routes_from_template(template), functions, account_id, inbox=inbox)
    server = ApiServer(("127.0.0.1", 3000), api)

Paths under /_inbox/ are the local runtime's own pages (local.inbox), never a route.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from local.functions import LocalFunction
from mmsapi.numbers import ascii_digits, ascii_int
from mmsapi.redact import RedactingFilter

# API Gateway refuses larger payloads with 413 before any function runs.
MAX_BODY_BYTES = 10 * 1024 * 1024
# HTTP APIs hand these content types to the function as text; all else is base64.
TEXT_CONTENT_TYPES = ("application/json", "application/xml", "application/javascript")

log = logging.getLogger(__name__)
# Request lines carry API keys (a legacy GET's query) and view secrets (/v/<id>.<secret>).
log.addFilter(RedactingFilter())


# ---------------------------------------------------------------- routes


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


# ---------------------------------------------------------------- events and answers


def _is_text(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_CONTENT_TYPES


@dataclass(frozen=True)
class HttpRequest:
    """One request as the server read it."""

    method: str
    target: str  # the path and query string, as sent
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str  # e.g. HTTP/1.1


def http_event(
    request: HttpRequest,
    *,
    route: Route,
    path_parameters: Mapping[str, str],
    account_id: str,
    now: float | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as AWS builds it."""
    now = time.time() if now is None else now
    split = urlsplit(request.target)
    source_ip = request.source_ip
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
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
                "method": request.method,
                "path": unquote(split.path),
                "protocol": request.protocol,
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
    if request.body:
        text: str | None = None
        if _is_text(joined.get("content-type", "")):
            with contextlib.suppress(UnicodeDecodeError):
                text = request.body.decode("utf-8")
        if text is None:
            event["body"] = base64.b64encode(request.body).decode("ascii")
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


# ---------------------------------------------------------------- the server


class LocalPages(Protocol):
    """Pages only the local runtime serves (local.inbox.Inbox at /_inbox/)."""

    def handle(self, request: HttpRequest) -> HttpAnswer: ...


class LocalApi:
    """The API Gateway of the template: route, build the event, invoke, answer."""

    def __init__(
        self,
        routes: list[Route],
        functions: Mapping[str, LocalFunction],
        account_id: str,
        inbox: LocalPages | None = None,
    ) -> None:
        self.routes = routes
        self.functions = functions
        self.account_id = account_id
        self.inbox = inbox

    def handle(self, request: HttpRequest) -> HttpAnswer:
        path = unquote(urlsplit(request.target).path)
        if self.inbox is not None and (path == "/_inbox" or path.startswith("/_inbox/")):
            return self.inbox.handle(request)  # the local runtime's own pages, not the API's
        found = find_route(self.routes, request.method, path)
        if found is None:
            log.info("no route for %s %s (routes come from template.yaml)", request.method, path)
            return _json_answer(404, "Not Found")
        route, parameters = found
        event = http_event(
            request, route=route, path_parameters=parameters, account_id=self.account_id
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
                request = HttpRequest(
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    self.client_address[0],
                    self.request_version,
                )
                answer = server.api.handle(request)
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
        if ascii_int(length, 0, MAX_BODY_BYTES) is None and length != "":
            self.close_connection = True
            self._write(_json_answer(413, "Request Entity Too Large"))
            return False
        return super().handle_expect_100()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length", "0").strip() or "0"
        if not ascii_digits(length_text):
            raise ValueError("bad Content-Length")
        length = ascii_int(length_text, 0, MAX_BODY_BYTES)
        if length is None:
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
