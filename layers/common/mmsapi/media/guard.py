"""The network guard: every outbound request to a customer-given URL goes through here.

Media fetches and postback deliveries reach addresses that clients choose, so a
request is allowed only to global unicast addresses. The rules:

- Only http and https URLs with a host and no userinfo (``user:pass@``).
- The host is resolved once; if ANY resolved address is not global unicast
  (private, loopback, link-local incl. 169.254.169.254, multicast, reserved,
  unspecified, shared 100.64/10, site-local, unique-local fc00::/7, or an IPv6
  address embedding such an IPv4 address: IPv4-mapped, IPv4-compatible,
  NAT64 64:ff9b::/96, 6to4, Teredo), the request is refused.
- Loopback (127/8, ::1) is allowed only when ``allow_loopback`` is true (the
  local runtime, tests). Private ranges stay refused even then.
- The RFC 1918 ranges (10/8, 172.16/12, 192.168/16) are allowed only with
  ``allow_private``, which only the operator-configured endpoints pass (the
  MMSC's MM7 URL and the SMS gateway, often behind a VPN): never a URL that a
  customer gave (media, postbacks). Link-local addresses such as the metadata
  service (169.254.169.254, fd00:ec2::254) stay refused even then.
- The connection goes to a vetted address (pinned: no second DNS lookup, so a
  rebinding DNS server cannot swap in a private address after the check), with
  the original Host header and, for https, SNI and certificate checks against
  the host name.
- Redirects (301/302/303/307/308) are followed up to a limit, and every hop is
  checked again from scratch.
- An overall deadline is enforced by a watchdog that shuts the socket down, so
  a server dripping bytes cannot hold a request beyond it.

Failures raise `NetworkError` (transport) or its subclass `GuardError` (the
request was refused by policy); both carry a human-readable `reason` for the
operator's log. A reason holds network details (addresses, ports, what the server
answered): it is never shown to a client, who would learn what listens where.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self
from urllib.parse import quote, urldefrag, urljoin, urlsplit

import urllib3.exceptions
from urllib3.connection import HTTPConnection, HTTPSConnection

from mmsapi.numbers import ascii_int

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> addresses as text, in the order they should be tried.
Resolver = Callable[[str, int], Sequence[str]]

REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_SHARED: Final = ipaddress.IPv4Network("100.64.0.0/10")
_UNIQUE_LOCAL: Final = ipaddress.IPv6Network("fc00::/7")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
_TEREDO: Final = ipaddress.IPv6Network("2001::/32")
_SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")

LOOPBACK: Final = "loopback"
# Private networks an operator's carrier link may use (RFC 1918), and nothing else:
# not 100.64/10, not link-local, not unique-local IPv6 (fd00:ec2::254 is in it).
RFC1918: Final = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)

# Host names after IDNA encoding: letters, digits, '-', '_' (seen in the wild), dots.
_HOST_NAME: Final = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
# Characters kept as they are when the path and query are re-quoted.
_PATH_SAFE: Final = "/%:@!$&'()*+,;=~"
_QUERY_SAFE: Final = _PATH_SAFE + "?"
# Headers the guard owns: the caller cannot point Host elsewhere or change framing.
_OWNED_HEADERS: Final = frozenset(
    {"host", "connection", "content-length", "transfer-encoding", "accept-encoding"}
)
# After the declared body, how long to wait for bytes a lying server sends beyond it.
# We ask for Connection: close, so honest servers end the stream at once.
_EXCESS_LINGER: Final = 0.1
_READ_CHUNK: Final = 64 * 1024


class NetworkError(Exception):
    """A request failed: connection, TLS, timeout, protocol, or refusal (subclass)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GuardError(NetworkError):
    """A request was refused by policy: address, scheme, userinfo, redirects."""


class BodyTooLargeError(NetworkError):
    """The body is (or is declared) larger than the caller's cap."""


# ---- addresses ---------------------------------------------------------------


def _v4_refusal(ip: ipaddress.IPv4Address) -> str | None:
    # Most specific reason first, so that messages name the range people know.
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _SHARED:
        return "shared address space (100.64.0.0/10)"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address that an IPv6 transition address would deliver to, if any."""
    value = int(ip)
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d (deprecated IPv4-compatible)
        return "IPv4-compatible", ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip in _NAT64:
        return "NAT64", ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR and ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip in _TEREDO and ip.teredo is not None:
        return "Teredo", ip.teredo[1]  # the client address, de-obfuscated
    return None


def _v6_refusal(ip: ipaddress.IPv6Address) -> str | None:
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_site_local:
        return "site-local"
    if ip in _UNIQUE_LOCAL:
        return "unique-local"
    if ip in _NAT64_LOCAL:
        return "local-use NAT64"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why an address may not be contacted ("private", "loopback", ...), or None."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _v4_refusal(ip)
    mapped = ip.ipv4_mapped
    if mapped is not None:
        # ::ffff:a.b.c.d is the IPv4 host itself on a dual-stack socket.
        return _v4_refusal(mapped)
    embedded = _embedded_v4(ip)
    if embedded is not None:
        mechanism, inner = embedded
        why = _v4_refusal(inner)
        if why is not None:
            # Never "loopback" itself: a tunnel to loopback is refused even locally.
            return f"{why} ({mechanism}, embeds {inner})"
    return _v6_refusal(ip)


def _is_rfc1918(ip: IPAddress) -> bool:
    # The IPv4 host itself or its IPv4-mapped form; never one reached through a tunnel.
    v4 = ip if isinstance(ip, ipaddress.IPv4Address) else ip.ipv4_mapped
    return v4 is not None and any(v4 in network for network in RFC1918)


def check_address(
    address: str | IPAddress, *, allow_loopback: bool, allow_private: bool = False
) -> IPAddress:
    """The address, parsed, if it may be contacted; GuardError otherwise.

    `allow_private` (RFC 1918 only) is for operator-configured endpoints, never for a
    URL a customer gave."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError as exc:
        raise GuardError(f"{address!r} is not an IP address") from exc
    why = address_refusal(ip)
    if why is None or (why == LOOPBACK and allow_loopback):
        return ip
    if allow_private and _is_rfc1918(ip):
        return ip
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    shown = f"{ip} ({mapped})" if mapped is not None else str(ip)
    raise GuardError(f"address {shown} is {why}")


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of a host from the system resolver (getaddrinfo order)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve_checked(
    host: str,
    port: int,
    *,
    allow_loopback: bool,
    resolver: Resolver | None = None,
    allow_private: bool = False,
) -> list[str]:
    """Every address of a host, vetted. One refused address refuses the host:
    otherwise a name with one public and one private record could be steered
    to the private one."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates: list[str] = [str(literal)]
    else:
        try:
            candidates = list(dict.fromkeys((resolver or system_resolver)(host, port)))
        except (OSError, UnicodeError) as exc:
            raise NetworkError(f"could not resolve {host}: {exc}") from exc
        if not candidates:
            raise NetworkError(f"{host} has no address")
    vetted: list[str] = []
    for candidate in candidates:
        try:
            checked = check_address(
                candidate, allow_loopback=allow_loopback, allow_private=allow_private
            )
            vetted.append(str(checked))
        except GuardError as exc:
            suffix = "" if literal is not None else f" ({host} resolves to it)"
            raise GuardError(exc.reason + suffix) from exc
    return vetted


# ---- URLs --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One request's destination, parsed and normalised."""

    url: str
    scheme: str
    host: str  # ASCII (IDNA) name or IP literal, lower case, IPv6 without brackets
    port: int
    request_target: str  # path and query as sent on the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def _ascii_host(raw_host: str) -> str:
    try:
        return str(ipaddress.ip_address(raw_host))
    except ValueError:
        pass  # a name, not an IP literal
    try:
        host = raw_host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise GuardError(f"invalid host name {raw_host!r}") from exc
    if not _HOST_NAME.match(host):
        raise GuardError(f"invalid host name {raw_host!r}")
    return host


def parse_target(url: str) -> Target:
    """Parse a URL for the guard; GuardError when it may not be requested at all."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise GuardError(f"invalid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise GuardError(f"scheme {scheme or '(none)'!r} is not allowed: only http and https")
    if "@" in parts.netloc:
        raise GuardError("URLs with credentials (user@host) are not allowed")
    raw_host = (parts.hostname or "").rstrip(".")
    if not raw_host:
        raise GuardError("URL has no host")
    host = _ascii_host(raw_host)
    # Re-quote so that spaces or non-ASCII characters cannot break the request line.
    request_target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        request_target += "?" + quote(parts.query, safe=_QUERY_SAFE)
    return Target(
        url=url.strip(),
        scheme=scheme,
        host=host,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        request_target=request_target,
    )


# ---- the request -------------------------------------------------------------


class _Watchdog:
    """Shuts a socket down at the deadline, which unblocks any read in progress."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.expired = False
        self._sock = sock
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.expired = True
        # The plain-socket method: SSLSocket.shutdown would tear down TLS state
        # under the feet of the reading thread. OSError: already closed.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    # urllib3 prefixes messages with the connection's repr: keep the useful tail.
    if "): " in text and text.startswith(("HTTPConnection(", "HTTPSConnection(")):
        text = text.split("): ", 1)[1]
    return text[:300]


class GuardedResponse:
    """A response whose body has not been read yet. Close it (or use `with`)."""

    def __init__(
        self,
        url: str,
        raw: http.client.HTTPResponse,
        conn: HTTPConnection,
        sock: socket.socket,
        watchdog: _Watchdog,
    ) -> None:
        self.url = url  # the URL this response came from (after redirects)
        self.status = raw.status
        self.reason = raw.reason
        self.headers = raw.msg
        self._raw = raw
        self._conn = conn
        self._sock = sock
        self._watchdog = watchdog

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def header(self, name: str) -> str | None:
        """A header's value; repeated headers are joined with ", " (RFC 9110 §5.3)."""
        values = self.headers.get_all(name)
        return ", ".join(values) if values else None

    @property
    def content_length(self) -> int | None:
        """The declared body length; NetworkError when it is not one plain number."""
        value = self.header("Content-Length")
        if value is None:
            return None
        length = ascii_int(value.strip(), 0, 2**63 - 1)
        if length is None:
            raise NetworkError(f"invalid Content-Length {value[:40]!r}")
        return length

    def _failure(self, reason: str) -> NetworkError:
        if self._watchdog.expired:
            return NetworkError("overall deadline exceeded")
        return NetworkError(reason)

    def read_body(self, max_bytes: int) -> bytes:
        """The whole body, never holding more than max_bytes (+1) of it.

        With a Content-Length: BodyTooLargeError when it exceeds max_bytes (nothing is
        read); NetworkError when the body ends early or the server sends bytes
        beyond the declared length (we read past http.client's own length
        bookkeeping to notice that). Without one (or chunked): read to the end,
        BodyTooLargeError as soon as more than max_bytes arrive.
        """
        try:
            declared = self.content_length
            if declared is not None and declared > max_bytes:
                raise BodyTooLargeError(
                    f"Content-Length {declared} exceeds the limit of {max_bytes}"
                )
            if declared is None or self._raw.chunked:
                return self._read_to_end(max_bytes)
            fp = self._raw.fp
            data = fp.read(declared) if declared else b""
            if len(data) < declared:
                raise self._failure(f"body ended after {len(data)} of {declared} declared bytes")
            if self._excess_pending(fp):
                raise self._failure(f"server sent more than the {declared} bytes it declared")
            return data
        except NetworkError:
            raise
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise self._failure(f"reading the body failed: {_describe(exc)}") from exc

    def iter_body(self, part_bytes: int, max_bytes: int | None = None) -> Iterator[bytes]:
        """The declared body in parts of at most part_bytes (a streamed upload), with
        read_body's checks: BodyTooLargeError when Content-Length exceeds max_bytes,
        NetworkError when the body ends early or goes beyond its Content-Length. A body
        without a Content-Length (or chunked) is refused: it has no bound to check.

        One part is held at a time; the watchdog's deadline covers every read.
        """
        declared = self.content_length
        if declared is None or self._raw.chunked:
            raise NetworkError("no Content-Length: the body cannot be read in parts")
        if max_bytes is not None and declared > max_bytes:
            raise BodyTooLargeError(f"Content-Length {declared} exceeds the limit of {max_bytes}")
        fp = self._raw.fp
        left = declared
        try:
            while left:
                part = fp.read(min(part_bytes, left))
                if not part:
                    got = declared - left
                    raise self._failure(f"body ended after {got} of {declared} declared bytes")
                left -= len(part)
                yield part
                del part  # not held while the next part is read
            if self._excess_pending(fp):
                raise self._failure(f"server sent more than the {declared} bytes it declared")
        except NetworkError:
            raise
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise self._failure(f"reading the body failed: {_describe(exc)}") from exc

    def _read_to_end(self, max_bytes: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while chunk := self._raw.read(_READ_CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise BodyTooLargeError(f"body exceeds the limit of {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _excess_pending(self, fp: io.BufferedReader) -> bool:
        if self._watchdog.expired:
            return False
        try:
            self._sock.settimeout(_EXCESS_LINGER)
            return bool(fp.peek(1))
        except (OSError, ValueError):
            return False  # timed out or closed: nothing more was sent

    def close(self) -> None:
        self._watchdog.cancel()
        self._raw.close()
        self._conn.close()
        self._sock.close()


def _connect(
    target: Target,
    addresses: Sequence[str],
    *,
    connect_timeout: float,
    deadline: float,
    ssl_context: ssl.SSLContext | None,
) -> tuple[HTTPConnection, socket.socket]:
    """A connection to the first vetted address that answers."""
    failures: list[str] = []
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            failures.append("overall deadline exceeded")
            break
        timeout = min(connect_timeout, remaining)
        conn: HTTPConnection
        if target.scheme == "https":
            # Pinned to the vetted address; SNI and certificate checked against the name.
            conn = HTTPSConnection(
                address,
                target.port,
                timeout=timeout,
                server_hostname=target.host,
                assert_hostname=target.host,
                ssl_context=ssl_context,
            )
        else:
            conn = HTTPConnection(address, target.port, timeout=timeout)
        try:
            conn.connect()
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            conn.close()
            failures.append(f"{address}: {_describe(exc)}")
            continue
        sock = conn.sock
        if sock is None:  # pragma: no cover - connect() either sets it or raises
            conn.close()
            failures.append(f"{address}: no socket")
            continue
        return conn, sock
    raise NetworkError(
        f"could not connect to {target.host_header}: " + "; ".join(failures or ["no address"])
    )


def _exchange(
    method: str,
    target: Target,
    addresses: Sequence[str],
    body: bytes | None,
    headers: Mapping[str, str],
    *,
    connect_timeout: float,
    read_timeout: float,
    deadline: float,
    ssl_context: ssl.SSLContext | None,
) -> GuardedResponse:
    conn, sock = _connect(
        target,
        addresses,
        connect_timeout=connect_timeout,
        deadline=deadline,
        ssl_context=ssl_context,
    )
    watchdog = _Watchdog(sock, deadline - time.monotonic())
    sent = {
        "Host": target.host_header,
        # Raw bytes only: Content-Length then counts what we store, and no zip bombs.
        "Accept-Encoding": "identity",
        # One request per connection; it also lets honest servers end the body with EOF.
        "Connection": "close",
        **{k: v for k, v in headers.items() if k.lower() not in _OWNED_HEADERS},
    }
    conn.timeout = read_timeout  # request() applies it to the socket for every read
    try:
        conn.request(method, target.request_target, body=body, headers=sent)
        # http.client's parser directly: read_body needs the raw stream underneath.
        raw = http.client.HTTPConnection.getresponse(conn)
    except (urllib3.exceptions.HTTPError, OSError, ValueError, http.client.HTTPException) as exc:
        watchdog.cancel()
        conn.close()
        sock.close()
        if watchdog.expired:
            raise NetworkError("overall deadline exceeded") from exc
        if isinstance(exc, TimeoutError):
            raise NetworkError(f"no answer within the read timeout of {read_timeout} s") from exc
        raise NetworkError(f"request to {target.host_header} failed: {_describe(exc)}") from exc
    return GuardedResponse(target.url, raw, conn, sock, watchdog)


def guarded_request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    max_redirects: int,
    allow_loopback: bool,
    connect_timeout: float,
    read_timeout: float,
    deadline: float,
    resolver: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
    allow_private: bool = False,
) -> GuardedResponse:
    """Send one request through the guard and return the final, unread response.

    `deadline` is a `time.monotonic()` instant covering every hop and the body
    read. A 3xx without Location is returned like any answer. A redirect beyond
    `max_redirects` raises GuardError (with 0, redirects are never followed).
    `resolver` and `ssl_context` (trusted CAs; default: the system's) are for tests.
    `allow_private` (RFC 1918, every hop) only for operator-configured URLs.
    303, and 301/302 after POST, continue as GET without a body (as browsers do).
    """
    current = url
    extra = dict(headers or {})
    max_redirects = max(0, max_redirects)
    for hop in range(max_redirects + 1):
        target = parse_target(current)
        addresses = resolve_checked(
            target.host,
            target.port,
            allow_loopback=allow_loopback,
            resolver=resolver,
            allow_private=allow_private,
        )
        response = _exchange(
            method,
            target,
            addresses,
            body,
            extra,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            deadline=deadline,
            ssl_context=ssl_context,
        )
        location = response.header("Location")
        if response.status not in REDIRECT_STATUSES or not location:
            return response
        response.close()
        if hop == max_redirects:
            break
        current = urldefrag(urljoin(current, location.strip())).url
        see_other = response.status == 303 or (response.status in (301, 302) and method == "POST")
        if see_other and method != "HEAD":
            method, body = "GET", None
            extra = {k: v for k, v in extra.items() if k.lower() != "content-type"}
    if max_redirects == 0:
        # The target's host only: its query string may hold a token.
        shown = urlsplit(urljoin(current, (location or "").strip())).hostname or "?"
        raise GuardError(f"HTTP {response.status} redirect to {shown} not followed")
    raise GuardError(f"too many redirects (more than {max_redirects})")


@dataclass(frozen=True)
class PostAnswer:
    """The answer to post_bytes: status line, Content-Type and the (capped) body."""

    status: int
    reason: str
    content_type: str | None
    body: bytes


def post_bytes(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_loopback: bool,
    timeout: float,
    max_response_bytes: int | None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    allow_private: bool = False,
) -> PostAnswer:
    """POST bytes through the guard, redirects not followed, and read the answer.

    `allow_private` lets the request reach RFC 1918 addresses: only for the URLs the
    operator configured (MMSC, SMS gateway), never for postbacks or anything a
    customer gave.

    `timeout` is the overall deadline in seconds, and the connect and read
    timeouts unless those are given. The body is read up to max_response_bytes
    (BodyTooLargeError beyond); with None it is left unread (b"").
    NetworkError (GuardError, BodyTooLargeError) as guarded_request.
    """
    with guarded_request(
        "POST",
        url,
        body=body,
        headers=headers,
        max_redirects=0,
        allow_loopback=allow_loopback,
        allow_private=allow_private,
        connect_timeout=timeout if connect_timeout is None else connect_timeout,
        read_timeout=timeout if read_timeout is None else read_timeout,
        deadline=time.monotonic() + timeout,
    ) as response:
        answer = b"" if max_response_bytes is None else response.read_body(max_response_bytes)
        return PostAnswer(response.status, response.reason, response.header("Content-Type"), answer)
