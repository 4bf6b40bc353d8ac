"""The inbox's previews (local/inbox_preview.py): what phones get (H.263/AMR in 3GP, AMR)
becomes WebM that Chromium plays (VP8/Opus), made once with the project's ffmpeg."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local.inbox_preview import MAX_SOURCE_BYTES, PreviewError, Previews
from mmsapi.media.ffmpeg import binaries
from tests.media_av import make_media


def webm_probe(path: Path) -> dict[str, Any]:
    """ffprobe's view (the product's probe() reads only the formats it accepts)."""
    _, ffprobe = binaries()
    command = [str(ffprobe), "-v", "error", "-print_format", "json", "-show_format",
               "-show_streams", str(path)]  # fmt: skip
    found: dict[str, Any] = json.loads(
        subprocess.run(command, capture_output=True, check=True, timeout=30).stdout
    )
    return found


@pytest.mark.parametrize(
    ("name", "kind", "codecs"),
    [
        ("h263_amr.3gp", "video", [("video", "vp8"), ("audio", "opus")]),
        ("tone.amr", "audio", [("audio", "opus")]),
    ],
)
def test_phone_media_becomes_webm_once(
    tmp_path: Path, name: str, kind: str, codecs: list[tuple[str, str]]
) -> None:
    # Given what an MMSC delivers to a phone
    data = make_media(tmp_path, name).read_bytes()
    previews = Previews(tmp_path / "data")
    # When its preview is asked for twice
    first = previews.preview(data, kind)
    made = first.stat().st_mtime_ns
    second = previews.preview(data, kind)
    # Then it is WebM with codecs Chromium plays, as long as the source
    found = webm_probe(first)
    assert "webm" in found["format"]["format_name"]
    assert [(s["codec_type"], s["codec_name"]) for s in found["streams"]] == codecs
    assert float(found["format"]["duration"]) == pytest.approx(2.0, abs=0.2)
    # And the second time is the same file, not made again; nothing else is left behind
    assert second == first
    assert second.stat().st_mtime_ns == made
    assert [p.name for p in first.parent.iterdir()] == [first.name]


def test_what_cannot_be_previewed_is_refused(tmp_path: Path) -> None:
    previews = Previews(tmp_path)
    with pytest.raises(PreviewError, match="larger than"):
        previews.preview(b"\0" * (MAX_SOURCE_BYTES + 1), "video")
    with pytest.raises(PreviewError):
        previews.preview(b"not a media file at all", "audio")
    with pytest.raises(PreviewError, match="no preview"):
        previews.preview(b"x", "image")
    # and a failed conversion leaves nothing behind
    assert list((tmp_path / "inbox" / "previews").iterdir()) == []
