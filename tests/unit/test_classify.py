"""Content-type rules (docs/media.md#types, `classify`) and content sniffing (`sniff_matches`)."""

from __future__ import annotations

import pytest

from mmsapi.media.fetch import sniff_matches
from mmsapi.media.types import (
    EXTENSIONS,
    MIME_TYPES,
    STORED_EXTENSION,
    ContentTypeError,
    MediaKind,
    classify,
    url_extension,
)

IMAGE = MediaKind.IMAGE
AUDIO = MediaKind.AUDIO
VIDEO = MediaKind.VIDEO
VCARD = MediaKind.VCARD
ICAL = MediaKind.ICAL
TEXT = MediaKind.TEXT

# (declared Content-Type, URL path, element kind, expected canonical type or error code)
MATRIX = [
    # Supported MIME type and supported extension: passes.
    ("image/png", "/a.png", IMAGE, "image/png"),
    # Supported MIME type and invalid extension: passes.
    ("image/png", "/a.xyz", IMAGE, "image/png"),
    # Supported MIME type and no extension: passes.
    ("image/png", "/media/1234", IMAGE, "image/png"),
    # Supported MIME type whatever the extension says, even another kind's.
    ("image/jpeg", "/clip.mp4", IMAGE, "image/jpeg"),
    # Case and parameters are ignored; aliases become the canonical type.
    ("Image/JPEG; charset=binary", "/a", IMAGE, "image/jpeg"),
    ("image/jpg", "/a", IMAGE, "image/jpeg"),
    ("audio/mp3", "/a", AUDIO, "audio/mpeg"),
    ("audio/x-wave", "/a", AUDIO, "audio/wav"),
    ("text/x-vcard", "/a", VCARD, "text/vcard"),
    ("application/x-pdf", "/a", MediaKind.PDF, "application/pdf"),
    # Supported MIME type of another kind: Content not allowed.
    ("video/mp4", "/a.png", IMAGE, "E229"),
    ("image/png", "/a.png", AUDIO, "E229"),
    ("application/pdf", "/a.pdf", VCARD, "E229"),
    # Octet-stream and supported extension of the element's kind: passes as the extension.
    ("application/octet-stream", "/a.png", IMAGE, "image/png"),
    ("application/octet-stream", "/dir/Song.MP3", AUDIO, "audio/mpeg"),
    ("application/octet-stream", "/a.jpeg", IMAGE, "image/jpeg"),
    (
        "application/octet-stream; charset=x",
        "/a.pkpass",
        MediaKind.PASSBOOK,
        "application/vnd.apple.pkpass",
    ),
    # S3's default type for untyped uploads counts as octet-stream.
    ("binary/octet-stream", "/a.mp4", VIDEO, "video/mp4"),
    # Octet-stream and a supported extension of another kind: Content not allowed.
    ("application/octet-stream", "/a.mp4", IMAGE, "E229"),
    # Octet-stream and invalid extension: Unrecognized content type.
    ("application/octet-stream", "/a.xyz", IMAGE, "E629"),
    ("application/octet-stream", "/a.png.exe", IMAGE, "E629"),
    # Octet-stream and no extension: Unrecognized content type.
    ("application/octet-stream", "/media/1234", IMAGE, "E629"),
    ("application/octet-stream", "/dir.png/", IMAGE, "E629"),
    ("application/octet-stream", "/.png", IMAGE, "E629"),
    # No Content-Type at all behaves like octet-stream.
    (None, "/a.gif", IMAGE, "image/gif"),
    ("", "/a.gif", IMAGE, "image/gif"),
    (None, "/a", IMAGE, "E629"),
    (None, "/a.wav", IMAGE, "E229"),
    # Percent-encoded paths are decoded before the extension is read.
    ("application/octet-stream", "/my%20photo%2Epng", IMAGE, "image/png"),
    # Any other type is unrecognised, whatever the extension.
    ("text/html", "/a.png", IMAGE, "E629"),
    ("application/json", "/a.mp3", AUDIO, "E629"),
    ("image/svg+xml", "/a.svg", IMAGE, "E629"),
    # text/plain is the text kind's type...
    ("text/plain; charset=utf-8", "/notes.txt", TEXT, "text/plain"),
    ("text/plain", "/a.png", IMAGE, "E229"),
    # ... and, for vCard/iCal only, a generic type when the extension is of the kind.
    ("text/plain", "/card.vcf", VCARD, "text/vcard"),
    ("text/plain", "/event.ics", ICAL, "text/calendar"),
    ("text/plain", "/card", VCARD, "E229"),
    ("text/plain", "/event.vcf", ICAL, "E229"),
]


@pytest.mark.parametrize(("declared", "path", "kind", "expected"), MATRIX)
def test_content_type_matrix(
    declared: str | None, path: str, kind: MediaKind, expected: str
) -> None:
    # Given what a media server declared, the URL path and the element's kind
    if expected.startswith("E"):
        # When it is classified, Then the error code is the expected one
        with pytest.raises(ContentTypeError) as raised:
            classify(declared, path, kind)
        assert raised.value.code == expected
        assert raised.value.reason
    else:
        # When it is classified, Then the canonical type is the expected one
        assert classify(declared, path, kind) == expected


@pytest.mark.parametrize("mime", sorted(MIME_TYPES))
def test_every_supported_mime_passes_for_its_kind(mime: str) -> None:
    # Given each row of the MIME table, When served for its own kind, Then it passes
    kind, canonical = MIME_TYPES[mime]
    assert classify(mime, "/file", kind) == canonical


@pytest.mark.parametrize("extension", sorted(EXTENSIONS))
def test_every_supported_extension_passes_as_octet_stream(extension: str) -> None:
    # Given each row of the extension table, When served as octet-stream for its kind
    kind, canonical = EXTENSIONS[extension]
    # Then it passes with the extension's canonical type
    assert classify("application/octet-stream", f"/dir/file.{extension}", kind) == canonical


@pytest.mark.parametrize(
    ("path", "extension"),
    [("/a.PNG", "png"), ("/a.tar.gz", "gz"), ("/a", ""), ("/.hidden", ""), ("/d.x/", ""), ("", "")],
)
def test_url_extension(path: str, extension: str) -> None:
    assert url_extension(path) == extension


# ---- sniffing ----------------------------------------------------------------

SAMPLES = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "image/gif": b"GIF89a\x01\x00\x01\x00",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "audio/wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "audio/amr": b"#!AMR\n\x3c",
    "video/mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00",
    "video/quicktime": b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00",
    "video/3gpp": b"\x00\x00\x00\x1cftyp3gp4\x00\x00\x00\x00",
    "video/mpeg": b"\x00\x00\x01\xba\x44\x00\x04\x00",
    "video/x-msvideo": b"RIFF\x24\x00\x00\x00AVI LIST",
    "video/x-ms-wmv": bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + b"\x00" * 8,
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "application/vnd.apple.pkpass": b"PK\x03\x04\x14\x00\x00\x00",
    "text/vcard": b"\xef\xbb\xbf\r\nbegin:vcard\r\nVERSION:3.0\r\n",
    "text/calendar": b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n",
    "text/plain": "Hello 👋 wörld".encode()[:-1],  # cut inside a character: still text
}
HTML = b"<!doctype html><html><body>Not found</body></html>"


def test_every_stored_type_has_a_sniffer_sample() -> None:
    # Given the canonical types we store, Then each one is covered here
    assert set(SAMPLES) == set(STORED_EXTENSION)


@pytest.mark.parametrize("mime", sorted(SAMPLES))
def test_sniff_recognises_its_format(mime: str) -> None:
    # Given the first bytes of a file of the type, When sniffed, Then it matches
    assert sniff_matches(SAMPLES[mime], mime)


@pytest.mark.parametrize("mime", sorted(set(SAMPLES) - {"text/plain"}))
def test_sniff_refuses_an_html_error_page(mime: str) -> None:
    # Given an HTML page served under a media extension, When sniffed, Then it does not match
    assert not sniff_matches(HTML, mime)


def test_sniff_tells_formats_apart() -> None:
    # Given a PNG, Then it is not a JPEG, a WAV is not a WebP, a zip is not a PDF
    assert not sniff_matches(SAMPLES["image/png"], "image/jpeg")
    assert not sniff_matches(SAMPLES["audio/wav"], "image/webp")
    assert not sniff_matches(SAMPLES["application/vnd.apple.pkpass"], "application/pdf")
    assert not sniff_matches(SAMPLES["text/vcard"], "text/calendar")
    assert not sniff_matches(b"\x00\x01binary", "text/plain")
    assert not sniff_matches(b"\xff\xfe\xfa", "text/plain")


def test_sniff_pdf_allows_leading_junk_and_unknown_types_never_match() -> None:
    assert sniff_matches(b"\r\n\x00junk%PDF-1.4", "application/pdf")
    assert not sniff_matches(b"%PDF-1.4", "application/x-unknown")
    assert not sniff_matches(b"", "image/png")
