"""E35x answers tell nothing of the network: whatever a media URL's port does (closed,
silent, not HTTP, reset, 404, 500), saveMMS answers the same code and the same text,
so the fetcher cannot be used as a port scanner. The reason is in the log only."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
from pytest_httpserver import HTTPServer

from mmsapi import observability
from mmsapi.settings import get_settings
from tests.conftest import Client
from tests.integration.helpers import answer
from tests.integration.test_save import save_xml

# What the documents say for a failed image fetch, and nothing more.
DOCUMENTED = "Could not copy Image file in slide 1."


class TcpServer:
    """A loopback port that accepts connections and treats each with `behave`."""

    def __init__(self, behave: Callable[[socket.socket], None]) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.behave = behave
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.behave(conn)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2)
        self.listener.close()


def _silent(conn: socket.socket) -> None:
    conn.settimeout(3)
    try:
        conn.recv(4096)  # the request; never answered
        conn.recv(1)  # until the client gives up
    except OSError:
        pass
    conn.close()


def _not_http(conn: socket.socket) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
    conn.close()


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST instead of FIN


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    """Given a silent port, a port speaking another protocol and a port resetting."""
    running = {
        name: TcpServer(b)
        for name, b in [("silent", _silent), ("ssh", _not_http), ("reset", _reset)]
    }
    try:
        yield {name: server.port for name, server in running.items()}
    finally:
        for server in running.values():
            server.stop()


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    return port


def test_every_fetch_failure_answers_the_same_words(
    client: Client,
    httpserver: HTTPServer,
    servers: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a short read timeout (the silent port's case), and the log captured
    monkeypatch.setenv("MMS_FETCH_READ_TIMEOUT", "0.5")
    get_settings.cache_clear()
    logged: list[dict[str, object]] = []
    monkeypatch.setattr(
        observability.logger, "warning", lambda msg, **kw: logged.append(kw.get("extra", {}))
    )
    httpserver.expect_request("/404.png").respond_with_data(b"gone", status=404)
    httpserver.expect_request("/500.png").respond_with_data(
        b"<h1>Tomcat 9 stack trace</h1>", status=500, headers={"Server": "Apache-Coyote/1.1"}
    )
    urls = {
        "refused": f"http://127.0.0.1:{_closed_port()}/a.png",
        "timeout": f"http://127.0.0.1:{servers['silent']}/a.png",
        "not http": f"http://127.0.0.1:{servers['ssh']}/a.png",
        "reset": f"http://127.0.0.1:{servers['reset']}/a.png",
        "404": httpserver.url_for("/404.png"),
        "500": httpserver.url_for("/500.png") + "?token=customer-secret",
    }
    # When saveMMS fetches its image from each
    answers = {
        case: answer(client.post(save_xml(f"<slide><image><url>{url}</url></image></slide>")))
        for case, url in urls.items()
    }
    # Then every answer is the documented E351 text, word for word: nothing tells a
    # refused port from a silent one, a non-HTTP service or an HTTP error
    for case, got in answers.items():
        assert (got["error-code"], got["error-info"]) == ("E351", DOCUMENTED), case
    # And the operator's log has each reason, with the host but not the query string
    reasons = [str(extra.get("reason")) for extra in logged]
    assert len(reasons) == len(urls)
    assert any("HTTP 404" in r for r in reasons)
    assert {extra.get("host") for extra in logged} <= {"127.0.0.1", "localhost"}
    assert "customer-secret" not in repr(logged)


def test_a_url_refused_for_its_text_says_why(client: Client) -> None:
    # Given a media URL with credentials (decided before any connection)
    url = "http://user:pw@example.com/a.png"
    # When it is saved, Then the answer says why: it reveals nothing of the network
    got = answer(client.post(save_xml(f"<slide><image><url>{url}</url></image></slide>")))
    assert got["error-code"] == "E351"
    assert "credentials" in got["error-info"]
