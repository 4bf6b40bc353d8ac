"""Fetching large files part by part into a spill (the save service streams them to S3)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from mmsapi.errors import ApiError
from mmsapi.media.fetch import HEAD_BYTES, fetch_media
from mmsapi.media.types import MediaKind
from mmsapi.settings import Settings
from tests.integration.test_fetch import RawServer, head, reason

CAP = 1_000_000
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 100  # 25,609 bytes


@pytest.fixture
def settings() -> Settings:
    # Streamed over 1 KiB, in 10 000-byte parts (S3's 5 MiB minimum is the store's concern).
    return Settings(
        allow_loopback_media=True,
        fetch_connect_timeout=1.0,
        fetch_read_timeout=0.5,
        fetch_total_timeout=3.0,
        stream_over_bytes=1024,
        stream_part_bytes=10_000,
    )


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    """Starts raw servers (test_fetch's), stopped after the test."""
    servers: list[RawServer] = []

    def start(head: bytes, body: bytes = b"", **options: float) -> RawServer:
        servers.append(RawServer(head, body, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


class Sink:
    """A spill that keeps what it was given, and whether the stream failed under it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.content_type = ""
        self.failed: BaseException | None = None

    def __call__(self, content_type: str, parts: Iterator[bytes]) -> str:
        self.content_type = content_type
        try:
            for part in parts:
                self.parts.append(part)
        except BaseException as exc:
            self.failed = exc
            raise
        return "the/key.pdf"


def test_large_file_is_handed_over_part_by_part(
    serve: Callable[..., RawServer], settings: Settings
) -> None:
    # Given a PDF larger than the streaming threshold
    server = serve(head("Content-Type: application/pdf", f"Content-Length: {len(PDF)}"), PDF)
    sink = Sink()
    # When it is fetched with a spill
    fetched = fetch_media(server.url("/a.pdf"), MediaKind.PDF, 3, CAP, settings, spill=sink)
    # Then the spill got it in parts of 10 000 bytes, and only its head is kept
    assert [len(p) for p in sink.parts] == [10_000, 10_000, 5_609]
    assert b"".join(sink.parts) == PDF
    assert sink.content_type == "application/pdf"
    assert fetched.data is None
    assert fetched.key == "the/key.pdf"
    assert fetched.size == len(PDF)
    assert fetched.head == PDF[:HEAD_BYTES]


def test_small_file_is_not_streamed(serve: Callable[..., RawServer], settings: Settings) -> None:
    # Given a PDF under the threshold
    small = PDF[:1000]
    server = serve(head("Content-Type: application/pdf", "Content-Length: 1000"), small)
    sink = Sink()
    # When it is fetched with a spill, Then it comes back in memory, the spill unused
    fetched = fetch_media(server.url("/a.pdf"), MediaKind.PDF, 3, CAP, settings, spill=sink)
    assert fetched.data == small
    assert fetched.key is None
    assert sink.parts == []


def test_truncated_stream_fails_inside_the_spill(
    serve: Callable[..., RawServer], settings: Settings
) -> None:
    # Given a server declaring the whole PDF and closing after 15 000 bytes
    declared = f"Content-Length: {len(PDF)}"
    server = serve(head("Content-Type: application/pdf", declared), PDF[:15_000])
    sink = Sink()
    # When it is fetched, Then it is the kind's copy failure
    with pytest.raises(ApiError) as raised:
        fetch_media(server.url("/a.pdf"), MediaKind.PDF, 3, CAP, settings, spill=sink)
    assert raised.value.code == "E357"
    assert reason(raised.value) == f"body ended after 15000 of {len(PDF)} declared bytes"
    # And the spill saw the failure (so it can abort its upload)
    assert sink.failed is not None


def test_stream_beyond_its_length_fails(
    serve: Callable[..., RawServer], settings: Settings
) -> None:
    # Given a server sending more than it declared
    server = serve(head("Content-Type: application/pdf", "Content-Length: 2000"), PDF, hold=5)
    sink = Sink()
    # When it is fetched, Then it fails at once, naming the excess
    started = time.monotonic()
    with pytest.raises(ApiError) as raised:
        fetch_media(server.url("/a.pdf"), MediaKind.PDF, 3, CAP, settings, spill=sink)
    assert time.monotonic() - started < settings.fetch_read_timeout
    assert reason(raised.value) == "server sent more than the 2000 bytes it declared"
    assert sink.failed is not None


def test_dripping_stream_ends_at_the_deadline(
    serve: Callable[..., RawServer], settings: Settings
) -> None:
    # Given a server dripping the PDF one byte every 10 ms (each read is quick)
    server = serve(
        head("Content-Type: application/pdf", f"Content-Length: {len(PDF)}"), PDF, drip=0.01
    )
    sink = Sink()
    # When it is fetched with a deadline one second away
    started = time.monotonic()
    with pytest.raises(ApiError) as raised:
        fetch_media(
            server.url("/a.pdf"),
            MediaKind.PDF,
            3,
            CAP,
            settings,
            deadline=started + 1.0,
            spill=sink,
        )
    # Then it fails at the deadline, not when the server would have finished
    assert time.monotonic() - started < 1.5
    assert raised.value.code == "E357"
    assert reason(raised.value) == "overall deadline exceeded"
    assert sink.failed is not None
