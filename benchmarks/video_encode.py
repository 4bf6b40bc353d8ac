"""Audio/video transcoding: speed, fit and duration of every rendition profile.

Inputs (made on the fly with ffmpeg's lavfi sources, deterministic): testsrc2
at 640x480, 30 fps, 3 Mbit/s H.264 with a 440 Hz sine in AAC; and the sine
alone as WAV. Each lasts 10 s, and 30 s (the longest slide) for the worst case.
Budgets are the module defaults: MP4 600 KB, 3GP 300 KB, MP3 300 KB, AMR 64 KB.

Each profile's wall time is the sum of its ffmpeg runs (a second run means the
first overshot its budget); the ffprobe checks are in the total per call.
Run: .venv/bin/python -m benchmarks.video_encode
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import mmsapi.media.transcode as transcode
from benchmarks.goals import Figure, record
from mmsapi.media import ffmpeg
from mmsapi.media.ffmpeg import probe
from mmsapi.media.transcode import (
    AMR_BUDGET_BYTES,
    AUDIO_BUDGET_BYTES,
    MAX_SECONDS,
    VIDEO_3GP_BUDGET_BYTES,
    VIDEO_BUDGET_BYTES,
    Rendition,
)
from tests.media_av import lavfi_media

DURATIONS = (10.0, 30.0)
BUDGETS = {
    "mp4": VIDEO_BUDGET_BYTES,
    "3gp": VIDEO_3GP_BUDGET_BYTES,
    "mp3": AUDIO_BUDGET_BYTES,
    "amr": AMR_BUDGET_BYTES,
}
VIDEO = ("-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-pix_fmt", "yuv420p")
AUDIO = ("-c:a", "aac", "-b:a", "128k")
WAV = ("-c:a", "pcm_s16le")

Encoder = Callable[..., tuple[float, list[Rendition]]]


class RunTimer:
    """Stands in for ffmpeg.run_ffmpeg: wall seconds and runs per output suffix."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.runs: dict[str, int] = defaultdict(int)
        self._run = ffmpeg.run_ffmpeg

    def __call__(self, args: Sequence[str], timeout: float) -> None:
        start = time.perf_counter()
        self._run(args, timeout)
        profile = Path(args[-1]).suffix.lstrip(".")
        self.seconds[profile] += time.perf_counter() - start
        self.runs[profile] += 1


def make_inputs(directory: Path, seconds: float) -> tuple[Path, Path]:
    video = lavfi_media(
        directory / f"testsrc2_{seconds:g}s.mp4",
        VIDEO,
        AUDIO,
        "mp4",
        seconds=seconds,
        size="640x480",
        rate=30,
    )
    audio = lavfi_media(directory / f"sine_{seconds:g}s.wav", None, WAV, "wav", seconds=seconds)
    return video, audio


def measure(encode: Encoder, source: Path, workdir: Path, budget: int) -> list[float]:
    """Prints each rendition's row; returns each one's speed (media seconds per wall second)."""
    timer = RunTimer()
    ffmpeg.run_ffmpeg = timer
    try:
        start = time.perf_counter()
        duration, renditions = encode(source, workdir, budget_bytes=budget, max_seconds=MAX_SECONDS)
        total = time.perf_counter() - start
    finally:
        ffmpeg.run_ffmpeg = timer._run
    speeds = []
    for rendition in renditions:
        profile = rendition.profile
        wall = timer.seconds[profile]
        out = probe(rendition.path).duration_seconds
        size = f"{rendition.width}x{rendition.height}" if rendition.width else "-"
        speeds.append(duration / wall)
        print(
            f"{source.name:20} {profile:5} {timer.runs[profile]:4d} {wall:7.2f} "
            f"{duration / wall:8.1f}x {rendition.bytes:9d} {BUDGETS[profile]:9d} "
            f"{rendition.bytes / BUDGETS[profile]:6.1%} {duration:7.2f} {out:7.2f} "
            f"{out - duration:+6.2f} {size:>8}"
        )
    print(f"{'':20} total {total:.2f} s for {len(renditions)} renditions (with probes)")
    return speeds


def main() -> None:
    print("Transcoding: each profile's ffmpeg runs, default budgets")
    print(
        f"{'input':20} {'prof':5} {'runs':>4} {'wall s':>7} {'media/s':>9} {'bytes':>9} "
        f"{'budget':>9} {'fill':>6} {'src s':>7} {'out s':>7} {'diff':>6} {'picture':>8}"
    )
    speeds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-av-") as tmp:
        directory = Path(tmp)
        for seconds in DURATIONS:
            video, audio = make_inputs(directory, seconds)
            speeds += measure(transcode.transcode_video, video, directory, VIDEO_BUDGET_BYTES)
            speeds += measure(transcode.transcode_audio, audio, directory, AUDIO_BUDGET_BYTES)
    record(
        Figure("encoding speed, slowest rendition (x real time)", min(speeds), 10, "x", "at least")
    )


if __name__ == "__main__":
    main()
