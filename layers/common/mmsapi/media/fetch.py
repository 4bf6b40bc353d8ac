"""Fetching media files (docs/media.md#fetching) through the network guard, and sniffing them.

The rules, in the order they are applied:

1. The query string and fragment are stripped; the URL must be absolute
   http/https (and pass the guard: global addresses only, no userinfo).
2. GET, following at most settings.fetch_max_redirects redirects.
3. The final answer must be HTTP 200, carry a plain Content-Length and no
   Transfer-Encoding (chunked is refused), and no Content-Encoding (we ask
   for identity: compressed bytes are not the file).
4. Content-Length over the cap: too big, without reading the body.
5. The content type is classified (`types.classify`) before the body is read,
   so an unsupported file costs no download.
6. The body is read with a hard cap: a body shorter than declared, or a
   server sending bytes beyond what it declared, fails.

Errors are ApiError with the element kind's codes (KIND_FACTS): `.too_big`
(E331..E338) for size, `.not_copied` (E351..E358) for everything network- or
protocol-related, E229/E629 for content types. The client reads the documented text
and nothing of the network: a refused connection, a timeout, a reset, an HTTP 404 or
a chunked body all answer the same E35x, with no detail (a reason would turn the
fetcher into a port scanner). Only a URL refused for its text alone (scheme,
credentials, host) says why. The reason goes to the log, with the URL's host only.

The body is returned as `bytes` in memory (the caps keep it bounded; the save
service uploads it and hands images to Pillow), unless the caller gives a `spill`
and the file is larger than settings.stream_over_bytes: then it is read in parts of
settings.stream_part_bytes and handed to the spill part by part (the save service
streams them to S3), and only its first bytes are kept, for sniffing.
"""

from __future__ import annotations

import codecs
import contextlib
import ipaddress
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from mmsapi.errors import ApiError
from mmsapi.media.guard import (
    BodyTooLargeError,
    GuardError,
    NetworkError,
    check_address,
    guarded_request,
    parse_target,
)
from mmsapi.media.types import (
    EXTENSIONS,
    KIND_FACTS,
    STORED_EXTENSION,
    ContentTypeError,
    MediaKind,
    classify,
    url_extension,
)
from mmsapi.observability import logger
from mmsapi.settings import Settings, get_settings

# Bytes kept of a streamed file: every sniffer below looks at the first KiB at most.
HEAD_BYTES: Final = 4096

# Stores a large body: (canonical content type, its parts in order) -> the key it is
# stored under. It must consume every part (errors of the fetch surface from the
# iterator) and leave nothing behind when it raises.
Spill = Callable[[str, Iterator[bytes]], str]


@dataclass(frozen=True)
class FetchedMedia:
    url: str  # as given, query string and fragment stripped
    final_url: str  # where the bytes came from, after redirects
    declared_type: str | None  # the Content-Type header as served (None when absent)
    content_type: str  # canonical MIME type after classification
    extension: str  # stored-file extension of content_type, without the dot
    data: bytes | None  # the whole file, or None when it was streamed to `key`
    size: int
    head: bytes  # the first HEAD_BYTES (for sniffing)
    key: str | None = None  # where the spill stored a streamed file


def strip_query(url: str) -> str:
    """The URL without its query string and fragment (docs/media.md#fetching)."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def fetch_media(
    url: str,
    kind: MediaKind,
    slide: int,
    max_bytes: int,
    settings: Settings | None = None,
    *,
    deadline: float | None = None,
    spill: Spill | None = None,
) -> FetchedMedia:
    """Fetch one media file of a slide; ApiError(code, x=slide, detail=reason) on failure.

    `deadline` (a time.monotonic() instant) ends the fetch, body and spill included;
    by default settings.fetch_total_timeout from now.
    """
    settings = settings or get_settings()
    facts = KIND_FACTS[kind]
    stripped = strip_query(url)
    try:
        _check_url(stripped, settings)
    except GuardError as exc:
        # Decided from the URL's text alone: telling why reveals nothing of the network.
        raise ApiError(facts.not_copied, x=slide, detail=exc.reason) from exc
    if deadline is None:
        deadline = time.monotonic() + settings.fetch_total_timeout
    try:
        return _fetch(stripped, kind, max_bytes, settings, deadline, spill)
    except BodyTooLargeError as exc:
        _log_failure(stripped, kind, slide, exc.reason)
        raise ApiError(facts.too_big, x=slide, detail=f"the limit is {max_bytes} bytes") from exc
    except NetworkError as exc:
        _log_failure(stripped, kind, slide, exc.reason)
        raise ApiError(facts.not_copied, x=slide) from exc
    except ContentTypeError as exc:
        _log_failure(stripped, kind, slide, exc.reason)
        # E229/E629 texts carry no slide number: name it in the detail, not the served type.
        raise ApiError(
            exc.code, x=slide, detail=f"slide {slide}: {_TYPE_REFUSED[exc.code]}"
        ) from exc


_TYPE_REFUSED: Final = {
    "E229": "the file's type is not allowed for this element",
    "E629": "the file's type is not recognised",
}


def _check_url(url: str, settings: Settings) -> None:
    """GuardError when the URL is refused for its text: not absolute http(s), no host,
    credentials, an invalid host name, a literal address that may not be contacted."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise GuardError("the URL must be absolute http or https")
    host = parse_target(url).host
    with contextlib.suppress(ValueError):  # a name: what it resolves to is not told
        literal = ipaddress.ip_address(host)
        check_address(literal, allow_loopback=settings.allow_loopback_media)


def _log_failure(url: str, kind: MediaKind, slide: int, reason: str) -> None:
    # The host, not the URL: a path or query string may hold the customer's tokens.
    host = urlsplit(url).hostname or "?"
    logger.warning(
        "media fetch failed",
        extra={"slide": slide, "kind": kind.value, "host": host, "reason": reason},
    )


def _type_path(url: str, final_url: str) -> str:
    """The URL path whose extension speaks for an octet-stream file: the given
    URL's, unless only the redirect target has a known extension."""
    given = urlsplit(url).path
    if url_extension(given) in EXTENSIONS:
        return given
    final = urlsplit(final_url).path
    return final if url_extension(final) in EXTENSIONS else given


def _fetch(
    url: str,
    kind: MediaKind,
    max_bytes: int,
    settings: Settings,
    deadline: float,
    spill: Spill | None,
) -> FetchedMedia:
    with guarded_request(
        "GET",
        url,
        headers={"User-Agent": settings.fetch_user_agent, "Accept": "*/*"},
        max_redirects=settings.fetch_max_redirects,
        allow_loopback=settings.allow_loopback_media,
        connect_timeout=settings.fetch_connect_timeout,
        read_timeout=settings.fetch_read_timeout,
        deadline=deadline,
    ) as response:
        if response.status != 200:
            raise NetworkError(f"server answered HTTP {response.status}")
        encoding = response.header("Transfer-Encoding")
        if encoding:
            raise NetworkError(f"server sent Transfer-Encoding: {encoding}, not Content-Length")
        declared = response.content_length
        if declared is None:
            raise NetworkError("server sent no Content-Length")
        if declared > max_bytes:
            raise BodyTooLargeError(f"{declared} bytes, the limit is {max_bytes}")
        coding = response.header("Content-Encoding")
        if coding and coding.strip().lower() != "identity":
            raise NetworkError(f"server sent Content-Encoding: {coding}")
        declared_type = response.headers.get("Content-Type")
        content_type = classify(declared_type, _type_path(url, response.url), kind)
        final_url = response.url
        data: bytes | None = None
        key: str | None = None
        if spill is not None and declared > settings.stream_over_bytes:
            sniffed = _Head()
            chunks = response.iter_body(settings.stream_part_bytes, max_bytes)
            key = spill(content_type, sniffed.watch(chunks))
            head, size = sniffed.data, declared  # iter_body checked the length
        else:
            data = response.read_body(max_bytes)
            head, size = data[:HEAD_BYTES], len(data)
    return FetchedMedia(
        url=url,
        final_url=final_url,
        declared_type=declared_type,
        content_type=content_type,
        extension=STORED_EXTENSION[content_type],
        data=data,
        size=size,
        head=head,
        key=key,
    )


class _Head:
    """Keeps the first HEAD_BYTES of the parts passing through `watch`."""

    def __init__(self) -> None:
        self.data = b""

    def watch(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if len(self.data) < HEAD_BYTES:
                self.data += chunk[: HEAD_BYTES - len(self.data)]
            yield chunk
            del chunk  # not held while the next part is read


# ---- sniffing ----------------------------------------------------------------


def _riff(form: bytes) -> Callable[[bytes], bool]:
    return lambda data: data[:4] == b"RIFF" and data[8:12] == form


def _text_starting(marker: bytes) -> Callable[[bytes], bool]:
    def check(data: bytes) -> bool:
        head = data[:512].removeprefix(codecs.BOM_UTF8).lstrip()
        return head[: len(marker)].upper() == marker

    return check


def _mp3(data: bytes) -> bool:
    # An ID3 tag, or straight into an MPEG audio frame (11 sync bits).
    return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


def _iso_media(data: bytes) -> bool:
    # MP4, QuickTime and 3GP share the box format: checked as one family,
    # ffmpeg tells the brands apart. Old QuickTime files start without ftyp.
    return data[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def _mpeg(data: bytes) -> bool:
    # Program stream, elementary video stream, or transport stream (0x47 every 188 bytes).
    if data[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return True
    return data[:1] == b"\x47" and data[188:189] == b"\x47"


def _utf8_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        # Incremental: a head cut inside a multi-byte character still counts as text.
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


_ASF_GUID: Final = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")

_SNIFFERS: Final[dict[str, Callable[[bytes], bool]]] = {
    "image/jpeg": lambda d: d[:3] == b"\xff\xd8\xff",
    "image/png": lambda d: d[:8] == b"\x89PNG\r\n\x1a\n",
    "image/gif": lambda d: d[:6] in (b"GIF87a", b"GIF89a"),
    "image/webp": _riff(b"WEBP"),
    "audio/mpeg": _mp3,
    "audio/wav": _riff(b"WAVE"),
    "audio/amr": lambda d: d[:5] == b"#!AMR",
    "video/mp4": _iso_media,
    "video/quicktime": _iso_media,
    "video/3gpp": _iso_media,
    "video/mpeg": _mpeg,
    "video/x-msvideo": _riff(b"AVI "),
    "video/x-ms-wmv": lambda d: d[:16] == _ASF_GUID,
    # Readers accept junk before the header within the first KiB.
    "application/pdf": lambda d: b"%PDF-" in d[:1024],
    "application/vnd.apple.pkpass": lambda d: d[:4] == b"PK\x03\x04",  # a zip archive
    "text/vcard": _text_starting(b"BEGIN:VCARD"),
    "text/calendar": _text_starting(b"BEGIN:VCALENDAR"),
    "text/plain": _utf8_text,
}


def sniff_matches(data: bytes, canonical_mime: str) -> bool:
    """Whether the bytes (the whole file or its first KiBs) look like the canonical
    MIME type's format. Unknown types never match. The save service uses it to
    refuse octet-stream files that are not what their extension says."""
    sniffer = _SNIFFERS.get(canonical_mime)
    return sniffer is not None and sniffer(data)
