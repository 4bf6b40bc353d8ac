"""Fetching media over real HTTP on loopback: pytest-httpserver for well-formed
servers, a tiny raw socket server for the malformed and slow ones."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from mmsapi.errors import ApiError
from mmsapi.media.fetch import FetchedMedia, fetch_media
from mmsapi.media.guard import GuardError, NetworkError, guarded_request
from mmsapi.media.types import MediaKind
from mmsapi.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
CAP = 10_000


@pytest.fixture
def settings() -> Settings:
    # Loopback allowed as in the local runtime; short timeouts keep the suite fast.
    return Settings(
        allow_loopback_media=True,
        fetch_connect_timeout=1.0,
        fetch_read_timeout=0.5,
        fetch_total_timeout=3.0,
        fetch_max_redirects=3,
    )


def fetch_image(url: str, settings: Settings, cap: int = CAP) -> FetchedMedia:
    return fetch_media(url, MediaKind.IMAGE, 2, cap, settings)


def fetch_error(url: str, settings: Settings, cap: int = CAP) -> ApiError:
    with pytest.raises(ApiError) as raised:
        fetch_image(url, settings, cap)
    return raised.value


def reason(error: ApiError) -> str:
    """Why a fetch failed, as the operator's log says it (the client is not told)."""
    cause = error.__cause__
    assert isinstance(cause, NetworkError), cause
    assert error.detail is None or not error.code.startswith("E35"), error.detail
    return cause.reason


# ---- a raw server for answers that well-behaved servers cannot give -----------


class RawServer:
    """Answers every connection on 127.0.0.1 with canned bytes, then holds the
    connection open for `hold` seconds (or until stopped). Bounded: one thread,
    accept polls a stop flag, every wait is capped."""

    def __init__(self, head: bytes, body: bytes = b"", *, hold: float = 0.0, drip: float = 0.0):
        self.head = head
        self.body = body
        self.hold = hold
        self.drip = drip  # seconds between body bytes; 0 sends the body at once
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/file.png") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        request = b""
        try:
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            self.requests.append(request)
            conn.sendall(self.head)
            if self.drip:
                for i in range(len(self.body)):
                    conn.sendall(self.body[i : i + 1])
                    if self._stop.wait(self.drip):
                        return
            else:
                conn.sendall(self.body)
        except OSError:
            return  # the client went away: expected in failure tests
        self._stop.wait(self.hold)

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(head: bytes, body: bytes = b"", **options: Any) -> RawServer:
        server = RawServer(head, body, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def head(*lines: str) -> bytes:
    return ("\r\n".join(["HTTP/1.1 200 OK", *lines]) + "\r\n\r\n").encode()


# ---- success -----------------------------------------------------------------


def test_fetch_with_content_length(httpserver: Any, settings: Settings) -> None:
    # Given a server answering 200 with Content-Length and a supported type
    httpserver.expect_request("/media/photo.png").respond_with_data(PNG, content_type="image/png")
    # When the image is fetched
    fetched = fetch_image(httpserver.url_for("/media/photo.png"), settings)
    # Then every fact of the file comes back
    assert fetched.data == PNG
    assert fetched.size == len(PNG)
    assert fetched.content_type == "image/png"
    assert fetched.declared_type == "image/png"
    assert fetched.extension == "png"
    assert fetched.url == fetched.final_url == httpserver.url_for("/media/photo.png")


def test_query_string_and_fragment_are_stripped(httpserver: Any, settings: Settings) -> None:
    # Given a media URL with a query string and a fragment
    httpserver.expect_request("/a.png").respond_with_data(PNG, content_type="image/png")
    # When it is fetched
    fetched = fetch_image(httpserver.url_for("/a.png") + "?w=100&token=s3cr3t#top", settings)
    # Then the server saw no query, and the stripped URL is what is kept
    request, _ = httpserver.log[-1]
    assert request.query_string == b""
    assert fetched.url == httpserver.url_for("/a.png")


def test_request_headers(httpserver: Any, settings: Settings) -> None:
    # Given a server, When a file is fetched
    httpserver.expect_request("/a.png").respond_with_data(PNG, content_type="image/png")
    fetch_image(httpserver.url_for("/a.png"), settings)
    # Then we asked for raw bytes, one request per connection, as ourselves
    request, _ = httpserver.log[-1]
    assert request.headers["Accept-Encoding"] == "identity"
    assert request.headers["Connection"] == "close"
    assert request.headers["User-Agent"] == settings.fetch_user_agent
    assert request.headers["Host"] == urlsplit(httpserver.url_for("/")).netloc


def test_octet_stream_takes_the_extension(httpserver: Any, settings: Settings) -> None:
    # Given a server answering application/octet-stream for a .png URL
    httpserver.expect_request("/a.png").respond_with_data(
        PNG, content_type="application/octet-stream"
    )
    # When it is fetched, Then the type comes from the extension
    fetched = fetch_image(httpserver.url_for("/a.png"), settings)
    assert (fetched.content_type, fetched.declared_type) == (
        "image/png",
        "application/octet-stream",
    )


# ---- refused answers ---------------------------------------------------------


def test_missing_content_length_fails(httpserver: Any, settings: Settings) -> None:
    # Given a server streaming the body from a generator (no Content-Length)
    httpserver.expect_request("/a.png").respond_with_handler(
        lambda _: Response(
            (PNG[i : i + 100] for i in range(0, len(PNG), 100)), mimetype="image/png"
        )
    )
    # When it is fetched
    error = fetch_error(httpserver.url_for("/a.png"), settings)
    # Then the image could not be copied, and the log says why
    assert error.code == "E351"
    # werkzeug streams it close-delimited, or chunked once any threaded werkzeug server
    # in the process has switched its handler class to HTTP/1.1: refused either way.
    assert reason(error) in {
        "server sent no Content-Length",
        "server sent Transfer-Encoding: chunked, not Content-Length",
    }
    assert error.info.startswith("Could not copy Image file in slide 2.")


def test_chunked_fails(raw_server: Callable[..., RawServer], settings: Settings) -> None:
    # Given a server answering with Transfer-Encoding: chunked
    server = raw_server(
        head("Content-Type: image/png", "Transfer-Encoding: chunked"), b"5\r\nhello\r\n0\r\n\r\n"
    )
    # When it is fetched, Then E351, and the log names the transfer encoding
    error = fetch_error(server.url(), settings)
    assert error.code == "E351"
    assert "Transfer-Encoding: chunked" in reason(error)


def test_chunked_with_content_length_still_fails(
    raw_server: Callable[..., RawServer], settings: Settings
) -> None:
    # Given a server sending both framings (invalid HTTP, seen behind some proxies)
    server = raw_server(
        head("Content-Type: image/png", "Content-Length: 5", "Transfer-Encoding: chunked"),
        b"5\r\nhello\r\n0\r\n\r\n",
    )
    # When it is fetched, Then chunked wins, and is refused
    assert fetch_error(server.url(), settings).code == "E351"


def test_lying_server_fails_without_hanging(
    raw_server: Callable[..., RawServer], settings: Settings
) -> None:
    # Given a server declaring 100 bytes, sending 5000, and keeping the connection open
    server = raw_server(
        head("Content-Type: image/png", "Content-Length: 100"), PNG[:8] + b"x" * 4992, hold=5
    )
    # When it is fetched
    started = time.monotonic()
    error = fetch_error(server.url(), settings)
    # Then it fails at once: the server sent more than it declared
    assert time.monotonic() - started < settings.fetch_read_timeout
    assert error.code == "E351"
    assert reason(error) == "server sent more than the 100 bytes it declared"


def test_more_than_the_cap_while_streaming_fails(
    raw_server: Callable[..., RawServer], settings: Settings
) -> None:
    # Given a server declaring a size under the cap but streaming past the cap
    server = raw_server(head("Content-Type: image/png", "Content-Length: 500"), b"x" * 3000)
    # When it is fetched with a cap of 1000 bytes
    error = fetch_error(server.url(), settings, cap=1000)
    # Then it fails as a copy failure (the size it declared was fine)
    assert error.code == "E351"
    assert reason(error) == "server sent more than the 500 bytes it declared"


def test_content_length_over_the_cap_is_too_big_without_reading(
    raw_server: Callable[..., RawServer], settings: Settings
) -> None:
    # Given a server declaring 10 MB and then sending nothing (reading would hang)
    server = raw_server(head("Content-Type: image/png", "Content-Length: 10000000"), hold=5)
    # When it is fetched with a 10 kB cap
    started = time.monotonic()
    error = fetch_error(server.url(), settings)
    # Then it is too big, decided from the header alone
    assert time.monotonic() - started < settings.fetch_read_timeout
    assert error.code == "E331"
    assert error.info.startswith("Image file in slide 2 is too big.")
    assert reason(error) == f"10000000 bytes, the limit is {CAP}"


def test_truncated_body_fails(raw_server: Callable[..., RawServer], settings: Settings) -> None:
    # Given a server declaring 1000 bytes and closing after 10
    server = raw_server(head("Content-Type: image/png", "Content-Length: 1000"), b"x" * 10)
    # When it is fetched, Then the short body is a copy failure
    error = fetch_error(server.url(), settings)
    assert error.code == "E351"
    assert reason(error) == "body ended after 10 of 1000 declared bytes"


@pytest.mark.parametrize("value", ["abc", "-1", "10, 20", "1e3"])
def test_malformed_content_length_fails(
    raw_server: Callable[..., RawServer], settings: Settings, value: str
) -> None:
    # Given a Content-Length that is not one plain number
    server = raw_server(head("Content-Type: image/png", f"Content-Length: {value}"), b"x")
    # When it is fetched, Then it is a copy failure
    assert fetch_error(server.url(), settings).code == "E351"


def test_compressed_body_fails(raw_server: Callable[..., RawServer], settings: Settings) -> None:
    # Given a server compressing although we asked for identity
    server = raw_server(
        head("Content-Type: image/png", "Content-Length: 3", "Content-Encoding: gzip"), b"abc"
    )
    # When it is fetched, Then the bytes are not the file: copy failure
    error = fetch_error(server.url(), settings)
    assert reason(error) == "server sent Content-Encoding: gzip"


@pytest.mark.parametrize("status", [404, 403, 500, 204, 206])
def test_status_other_than_200_fails(httpserver: Any, settings: Settings, status: int) -> None:
    # Given a server answering something other than 200
    httpserver.expect_request("/a.png").respond_with_data(b"", status=status)
    # When it is fetched, Then E351, and the log names the status
    error = fetch_error(httpserver.url_for("/a.png"), settings)
    assert error.code == "E351"
    assert reason(error) == f"server answered HTTP {status}"


def test_audio_failure_uses_the_audio_code(httpserver: Any, settings: Settings) -> None:
    # Given an audio element whose server answers 404
    httpserver.expect_request("/a.mp3").respond_with_data(b"", status=404)
    # When it is fetched, Then the audio code and the slide number are used
    with pytest.raises(ApiError) as raised:
        fetch_media(httpserver.url_for("/a.mp3"), MediaKind.AUDIO, 3, CAP, settings)
    assert raised.value.code == "E352"
    assert raised.value.info.startswith("Could not copy Audio file in slide 3.")


@pytest.mark.parametrize(("content_type", "code"), [("text/html", "E629"), ("video/mp4", "E229")])
def test_wrong_content_type_fails_before_the_body(
    raw_server: Callable[..., RawServer], settings: Settings, content_type: str, code: str
) -> None:
    # Given a server declaring an unsuitable type and never sending the body
    server = raw_server(head(f"Content-Type: {content_type}", "Content-Length: 5000"), hold=5)
    # When it is fetched
    started = time.monotonic()
    error = fetch_error(server.url(), settings)
    # Then the type decides, without waiting for the body
    assert time.monotonic() - started < settings.fetch_read_timeout
    assert error.code == code
    assert error.detail is not None
    assert error.detail.startswith("slide 2: ")


# ---- timeouts ----------------------------------------------------------------


def test_silent_server_fails_within_the_read_timeout(
    raw_server: Callable[..., RawServer], settings: Settings
) -> None:
    # Given a server sending headers and then nothing
    server = raw_server(head("Content-Type: image/png", "Content-Length: 100"), hold=5)
    # When it is fetched with a 0.5 s read timeout
    started = time.monotonic()
    error = fetch_error(server.url(), settings)
    elapsed = time.monotonic() - started
    # Then it fails shortly after the read timeout
    assert settings.fetch_read_timeout <= elapsed < settings.fetch_read_timeout + 1.0
    assert error.code == "E351"


def test_dripping_server_fails_at_the_overall_deadline(
    raw_server: Callable[..., RawServer], settings: Settings
) -> None:
    # Given a server sending one byte every 0.05 s (each read is quick, the whole is slow)
    server = raw_server(
        head("Content-Type: image/png", "Content-Length: 200"), b"x" * 200, drip=0.05
    )
    deadline_settings = replace(settings, fetch_total_timeout=1.0)
    # When it is fetched with a 1 s overall deadline
    started = time.monotonic()
    error = fetch_error(server.url(), deadline_settings)
    elapsed = time.monotonic() - started
    # Then it fails at the deadline, not after the 10 s the drip would take
    assert 1.0 <= elapsed < 2.0
    assert reason(error) == "overall deadline exceeded"


def test_closed_port_fails(settings: Settings) -> None:
    # Given a port nobody listens on
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    # When it is fetched, Then the connection failure is a copy failure
    error = fetch_error(f"http://127.0.0.1:{port}/a.png", settings)
    assert error.code == "E351"
    assert reason(error).startswith("could not connect to")


# ---- redirects and the guard ---------------------------------------------------


def chain(httpserver: Any, hops: int) -> str:
    """A chain of `hops` redirects ending at a PNG; returns the first URL."""
    for i in range(hops):
        target = f"/hop{i + 1}" if i + 1 < hops else "/final.png"
        # Relative Location: resolved against the current URL.
        httpserver.expect_request(f"/hop{i}").respond_with_data(
            b"", status=(301, 302, 303, 307, 308)[i % 5], headers={"Location": target}
        )
    httpserver.expect_request("/final.png").respond_with_data(PNG, content_type="image/png")
    return str(httpserver.url_for("/hop0"))


def test_three_redirects_are_followed(httpserver: Any, settings: Settings) -> None:
    # Given a chain of three redirects
    # When it is fetched
    fetched = fetch_image(chain(httpserver, 3), settings)
    # Then the file arrives from the end of the chain
    assert fetched.data == PNG
    assert fetched.final_url == httpserver.url_for("/final.png")
    assert fetched.url == httpserver.url_for("/hop0")


def test_four_redirects_fail(httpserver: Any, settings: Settings) -> None:
    # Given a chain of four redirects, When it is fetched, Then it fails
    error = fetch_error(chain(httpserver, 4), settings)
    assert error.code == "E351"
    assert reason(error) == "too many redirects (more than 3)"


def test_octet_stream_extension_may_come_from_the_redirect_target(
    httpserver: Any, settings: Settings
) -> None:
    # Given /media/42 redirecting to a .png served as octet-stream
    httpserver.expect_request("/media/42").respond_with_data(
        b"", status=302, headers={"Location": "/files/42.png"}
    )
    httpserver.expect_request("/files/42.png").respond_with_data(
        PNG, content_type="application/octet-stream"
    )
    # When it is fetched, Then the target's extension tells the type
    assert fetch_image(httpserver.url_for("/media/42"), settings).content_type == "image/png"


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://10.0.0.1/a.png", "address 10.0.0.1 is private"),
        ("http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is link-local"),
        ("http://[::ffff:192.168.0.1]/a.png", "is private"),
        ("ftp://example.com/a.png", "only http and https"),
        ("http://admin:pw@example.com/a.png", "credentials"),
    ],
)
def test_redirect_to_a_refused_target_fails(
    httpserver: Any, settings: Settings, location: str, why: str
) -> None:
    # Given a loopback server (allowed) redirecting to a private or metadata address
    httpserver.expect_request("/a.png").respond_with_data(
        b"", status=302, headers={"Location": location}
    )
    # When it is fetched
    error = fetch_error(httpserver.url_for("/a.png"), settings)
    # Then the hop is checked again and refused before any connection
    assert error.code == "E351"
    assert why in reason(error)


def test_loopback_refused_without_the_flag(httpserver: Any, settings: Settings) -> None:
    # Given the deployed setting (no loopback)
    httpserver.expect_request("/a.png").respond_with_data(PNG, content_type="image/png")
    strict = replace(settings, allow_loopback_media=False)
    # When a loopback URL is fetched, Then it is refused and the server is never contacted
    error = fetch_error(httpserver.url_for("/a.png"), strict)
    assert " is loopback (localhost resolves to it)" in reason(error)
    assert len(httpserver.log) == 0


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "/relative/a.png", "a.png"])
def test_only_absolute_http_urls(settings: Settings, url: str) -> None:
    # Given a URL that is not absolute http/https, When fetched, Then it cannot be copied
    error = fetch_error(url, settings)
    assert error.code == "E351"
    assert error.detail == "the URL must be absolute http or https"


def test_connection_is_pinned_to_the_vetted_address(httpserver: Any) -> None:
    # Given a name that resolves to loopback, counted so that a second lookup shows
    lookups: list[str] = []

    def resolver(host: str, port: int) -> Sequence[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    httpserver.expect_request("/a.png").respond_with_handler(
        lambda request: Response(request.headers.get("Host", ""), content_type="text/plain")
    )
    url = f"http://media.example:{httpserver.port}/a.png"
    # When it is requested through the guard
    with guarded_request(
        "GET",
        url,
        max_redirects=0,
        allow_loopback=True,
        connect_timeout=1,
        read_timeout=1,
        deadline=time.monotonic() + 3,
        resolver=resolver,
    ) as response:
        body = response.read_body(1000)
    # Then the name was resolved once and the original Host header was sent
    assert lookups == ["media.example"]
    assert body == f"media.example:{httpserver.port}".encode()


def test_rebinding_name_is_checked_on_every_hop(httpserver: Any) -> None:
    # Given a name resolving to loopback first and to a private address next time
    answers = iter([["127.0.0.1"], ["10.0.0.7"]])

    def resolver(host: str, port: int) -> Sequence[str]:
        return next(answers)

    def redirect(request: Request) -> Response:
        return Response(b"", status=302, headers={"Location": "/again.png"})

    httpserver.expect_request("/a.png").respond_with_handler(redirect)
    # When the redirect leads back to the same name
    with pytest.raises(GuardError) as raised:
        guarded_request(
            "GET",
            f"http://rebind.example:{httpserver.port}/a.png",
            max_redirects=3,
            allow_loopback=True,
            connect_timeout=1,
            read_timeout=1,
            deadline=time.monotonic() + 3,
            resolver=resolver,
        )
    # Then the second answer is checked too, and refused
    assert "10.0.0.7 is private" in raised.value.reason


# ---- https: pinned address, SNI and certificate checked against the name -----


def _certificates(tmp: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for media.example; file paths (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)

    def build(
        subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: Any, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("mmsapi test CA", "mmsapi test CA", ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build("media.example", "mmsapi test CA", key, ca_key, ca=False)
    paths = (tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem")
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture(scope="module")
def _https_module(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HTTPServer, ssl.SSLContext]]:
    # One server for the module: stopping a werkzeug server costs half a second.
    ca, cert, key = _certificates(tmp_path_factory.mktemp("tls"))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_context)
    server.start()
    yield server, ssl.create_default_context(cafile=str(ca))
    server.stop()


@pytest.fixture
def https_server(
    _https_module: tuple[HTTPServer, ssl.SSLContext],
) -> Iterator[tuple[HTTPServer, ssl.SSLContext]]:
    """An https server on 127.0.0.1 with a certificate for media.example, and a
    client context trusting its CA."""
    yield _https_module
    _https_module[0].clear()


def _https_get(server: HTTPServer, context: ssl.SSLContext, name: str) -> bytes:
    with guarded_request(
        "GET",
        f"https://{name}:{server.port}/a.png",
        max_redirects=0,
        allow_loopback=True,
        connect_timeout=1,
        read_timeout=1,
        deadline=time.monotonic() + 3,
        resolver=lambda host, port: ["127.0.0.1"],
        ssl_context=context,
    ) as response:
        return response.read_body(CAP)


def test_https_checks_the_certificate_against_the_name(
    https_server: tuple[HTTPServer, ssl.SSLContext],
) -> None:
    # Given an https server with a certificate for media.example, reached through its name
    server, context = https_server
    server.expect_request("/a.png").respond_with_data(PNG, content_type="image/png")
    # When it is requested by name, pinned to 127.0.0.1
    body = _https_get(server, context, "media.example")
    # Then TLS verified the name and the file arrives
    assert body == PNG
    request, _ = server.log[-1]
    assert request.headers["Host"] == f"media.example:{server.port}"


def test_https_refuses_a_certificate_for_another_name(
    https_server: tuple[HTTPServer, ssl.SSLContext],
) -> None:
    # Given the same server reached through a name its certificate does not carry
    server, context = https_server
    # When it is requested, Then the TLS check fails and nothing is sent
    with pytest.raises(NetworkError) as raised:
        _https_get(server, context, "other.example")
    assert "other.example" in raised.value.reason
    assert len(server.log) == 0
