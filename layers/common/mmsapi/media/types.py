"""The MIME table and the per-kind facts (docs/media.md#types): one source of truth."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import unquote


class MediaKind(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    TEXT = "text"
    VCARD = "vcard"
    ICAL = "ical"
    PDF = "pdf"
    PASSBOOK = "passbook"


# Kinds that are objects (never transcoded, one per slide, never with media).
OBJECT_KINDS: Final = frozenset(
    {MediaKind.VCARD, MediaKind.ICAL, MediaKind.PDF, MediaKind.PASSBOOK}
)
# Kinds encoded asynchronously by the encoding pipeline.
TIMED_KINDS: Final = frozenset({MediaKind.AUDIO, MediaKind.VIDEO})


@dataclass(frozen=True)
class KindFacts:
    too_big: str  # error code when the file exceeds the account's cap
    not_copied: str  # error code when the fetch fails
    label: str  # how the kind is named in texts


KIND_FACTS: Final[dict[MediaKind, KindFacts]] = {
    MediaKind.IMAGE: KindFacts("E331", "E351", "Image"),
    MediaKind.AUDIO: KindFacts("E332", "E352", "Audio"),
    MediaKind.VIDEO: KindFacts("E333", "E353", "Video"),
    MediaKind.TEXT: KindFacts("E334", "E354", "Text"),
    MediaKind.VCARD: KindFacts("E335", "E355", "vCard"),
    MediaKind.ICAL: KindFacts("E336", "E356", "iCal"),
    MediaKind.PDF: KindFacts("E337", "E357", "PDF"),
    MediaKind.PASSBOOK: KindFacts("E338", "E358", "Passbook"),
}

# Extension -> (kind, canonical MIME type). The first MIME of each kind's
# extensions below is the one stored and sent.
EXTENSIONS: Final[dict[str, tuple[MediaKind, str]]] = {
    "jpg": (MediaKind.IMAGE, "image/jpeg"),
    "jpeg": (MediaKind.IMAGE, "image/jpeg"),
    "png": (MediaKind.IMAGE, "image/png"),
    "gif": (MediaKind.IMAGE, "image/gif"),
    "webp": (MediaKind.IMAGE, "image/webp"),
    "mp3": (MediaKind.AUDIO, "audio/mpeg"),
    "wav": (MediaKind.AUDIO, "audio/wav"),
    "amr": (MediaKind.AUDIO, "audio/amr"),
    "mp4": (MediaKind.VIDEO, "video/mp4"),
    "mpg": (MediaKind.VIDEO, "video/mpeg"),
    "mpeg": (MediaKind.VIDEO, "video/mpeg"),
    "avi": (MediaKind.VIDEO, "video/x-msvideo"),
    "wmv": (MediaKind.VIDEO, "video/x-ms-wmv"),
    "mov": (MediaKind.VIDEO, "video/quicktime"),
    "3gp": (MediaKind.VIDEO, "video/3gpp"),
    "vcf": (MediaKind.VCARD, "text/vcard"),
    "vcard": (MediaKind.VCARD, "text/vcard"),
    "ics": (MediaKind.ICAL, "text/calendar"),
    "ical": (MediaKind.ICAL, "text/calendar"),
    "ifb": (MediaKind.ICAL, "text/calendar"),
    "icalendar": (MediaKind.ICAL, "text/calendar"),
    "pdf": (MediaKind.PDF, "application/pdf"),
    "pkpass": (MediaKind.PASSBOOK, "application/vnd.apple.pkpass"),
    "txt": (MediaKind.TEXT, "text/plain"),
}

# MIME type (lower case, no parameters) -> (kind, canonical MIME type).
MIME_TYPES: Final[dict[str, tuple[MediaKind, str]]] = {
    "image/jpg": (MediaKind.IMAGE, "image/jpeg"),
    "image/jpeg": (MediaKind.IMAGE, "image/jpeg"),
    "image/pjpeg": (MediaKind.IMAGE, "image/jpeg"),
    "image/png": (MediaKind.IMAGE, "image/png"),
    "image/gif": (MediaKind.IMAGE, "image/gif"),
    "image/webp": (MediaKind.IMAGE, "image/webp"),
    "audio/mp3": (MediaKind.AUDIO, "audio/mpeg"),
    "audio/mpeg": (MediaKind.AUDIO, "audio/mpeg"),
    "audio/x-wave": (MediaKind.AUDIO, "audio/wav"),
    "audio/x-wav": (MediaKind.AUDIO, "audio/wav"),
    "audio/wav": (MediaKind.AUDIO, "audio/wav"),
    "audio/amr": (MediaKind.AUDIO, "audio/amr"),
    "video/mp4": (MediaKind.VIDEO, "video/mp4"),
    "video/mpeg": (MediaKind.VIDEO, "video/mpeg"),
    "video/x-msvideo": (MediaKind.VIDEO, "video/x-msvideo"),
    "video/x-ms-wmv": (MediaKind.VIDEO, "video/x-ms-wmv"),
    "video/quicktime": (MediaKind.VIDEO, "video/quicktime"),
    "video/3gpp": (MediaKind.VIDEO, "video/3gpp"),
    "text/vcard": (MediaKind.VCARD, "text/vcard"),
    "text/v-card": (MediaKind.VCARD, "text/vcard"),
    "text/x-vcard": (MediaKind.VCARD, "text/vcard"),
    "text/calendar": (MediaKind.ICAL, "text/calendar"),
    "application/pdf": (MediaKind.PDF, "application/pdf"),
    "application/x-pdf": (MediaKind.PDF, "application/pdf"),
    "application/vnd.apple.pkpass": (MediaKind.PASSBOOK, "application/vnd.apple.pkpass"),
    "text/plain": (MediaKind.TEXT, "text/plain"),
}

OCTET_STREAM: Final = "application/octet-stream"

# Canonical MIME type -> the extension used for stored files.
STORED_EXTENSION: Final[dict[str, str]] = {
    mime: ext for ext, (_, mime) in reversed(list(EXTENSIONS.items()))
}

# Content types that say "some bytes": the URL's extension decides instead.
# binary/octet-stream is what S3 serves for objects uploaded without a type.
GENERIC_MIME_TYPES: Final = frozenset({OCTET_STREAM, "binary/octet-stream"})
# Text objects that servers commonly serve as text/plain (GitHub raw, default
# server configurations): with an extension of the element's kind they are
# treated like octet-stream, and the save service sniffs the content.
_PLAIN_TEXT_OBJECTS: Final = frozenset({MediaKind.VCARD, MediaKind.ICAL})


class ContentTypeError(Exception):
    """A served content type that the element cannot take: E229 or E629."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def url_extension(url_path: str) -> str:
    """The lower-case extension of a URL path without the dot ('' when none)."""
    name = unquote(url_path).rsplit("/", 1)[-1]
    stem, dot, extension = name.rpartition(".")
    return extension.lower() if dot and stem else ""


def classify(declared_mime: str | None, url_path: str, kind: MediaKind) -> str:
    """The canonical MIME type of a fetched file, by docs/media.md#types.

    - A supported MIME type (MIME_TYPES; case and parameters such as
      '; charset=' ignored) passes whatever the extension, when it belongs to
      the element's kind; a supported type of another kind (an <image> serving
      video/mp4) is E229 Content not allowed.
    - application/octet-stream, binary/octet-stream, or no/empty Content-Type:
      the URL path's extension decides. A supported extension of the element's
      kind passes with that extension's canonical type; of another kind, E229;
      an unknown or missing extension, E629 Unrecognized content type.
    - text/plain for a <vcard> or <ical> element is treated like octet-stream
      (servers commonly default these text files to it).
    - Any other type (text/html, application/json, …) is E629.

    `url_path` is the path only (no query); it may be percent-encoded.
    Raises ContentTypeError with the code.
    """
    mime = (declared_mime or "").split(";", 1)[0].strip().lower()
    known = MIME_TYPES.get(mime)
    plain_object = mime == "text/plain" and kind in _PLAIN_TEXT_OBJECTS
    if known is not None and not plain_object:
        served_kind, canonical = known
        if served_kind is not kind:
            raise ContentTypeError("E229", f"{mime} is not allowed for a {kind.value} element")
        return canonical
    if mime and mime not in GENERIC_MIME_TYPES and not plain_object:
        raise ContentTypeError("E629", f"content type {mime} is not supported")
    served = mime or "no content type"
    extension = url_extension(url_path)
    by_extension = EXTENSIONS.get(extension)
    if plain_object and (by_extension is None or by_extension[0] is not kind):
        # The leniency needs the extension's support; without it, the strict rule.
        raise ContentTypeError("E229", f"{mime} is not allowed for a {kind.value} element")
    if by_extension is None:
        shown = f".{extension}" if extension else "no extension"
        raise ContentTypeError("E629", f"{served} with {shown} in the URL")
    extension_kind, canonical = by_extension
    if extension_kind is not kind:
        raise ContentTypeError(
            "E229", f"{served} with .{extension} is not allowed for a {kind.value} element"
        )
    return canonical
