"""Test audio and video made by ffmpeg itself (lavfi testsrc2 and sine): small,
deterministic, one per supported container and codec, never downloaded."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Final

from mmsapi.media.ffmpeg import run_ffmpeg

SECONDS: Final = 2.0
SIZE: Final = "320x240"
RATE: Final = 15
TIMEOUT: Final = 60.0
# Same bytes on every run: no encoder version strings, no random ids.
BITEXACT: Final = ("-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact")

_H264: Final = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
_AAC: Final = ("-c:a", "aac", "-b:a", "64k")

# File name -> (video encoder arguments or None, audio encoder arguments or None, muxer).
RECIPES: Final[dict[str, tuple[tuple[str, ...] | None, tuple[str, ...] | None, str]]] = {
    "h264_aac.mp4": (_H264, _AAC, "mp4"),
    "mpeg1_mp2.mpg": (("-c:v", "mpeg1video", "-r", "25", "-b:v", "400k"), ("-c:a", "mp2"), "mpeg"),
    "mpeg4_mp3.avi": (("-c:v", "mpeg4", "-b:v", "400k"), ("-c:a", "libmp3lame"), "avi"),
    "wmv2_wmav2.wmv": (("-c:v", "wmv2", "-b:v", "400k"), ("-c:a", "wmav2"), "asf"),
    "h264_aac.mov": (_H264, _AAC, "mov"),
    "h263_amr.3gp": (
        ("-c:v", "h263", "-s", "176x144"),
        ("-c:a", "libopencore_amrnb", "-ar", "8000", "-ac", "1", "-b:a", "12.2k"),
        "3gp",
    ),
    "video_only.mp4": (_H264, None, "mp4"),
    "tone.mp3": (None, ("-c:a", "libmp3lame", "-b:a", "64k"), "mp3"),
    "tone.wav": (None, ("-c:a", "pcm_s16le", "-ar", "22050"), "wav"),
    "tone.amr": (None, ("-c:a", "libopencore_amrnb", "-ar", "8000", "-ac", "1"), "amr"),
}
VIDEO_NAMES: Final = tuple(name for name, recipe in RECIPES.items() if recipe[0] is not None)
AUDIO_NAMES: Final = tuple(name for name, recipe in RECIPES.items() if recipe[0] is None)


def lavfi_media(
    out: Path,
    video: tuple[str, ...] | None,
    audio: tuple[str, ...] | None,
    muxer: str,
    *,
    seconds: float = SECONDS,
    size: str = SIZE,
    rate: int = RATE,
    muxer_options: tuple[str, ...] = (),
) -> Path:
    """Encode `seconds` of testsrc2 and/or a 440 Hz sine into `out`."""
    inputs: list[str] = []
    if video is not None:
        inputs += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    if audio is not None:
        inputs += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    codecs = [*(video or ("-vn",)), *(audio or ("-an",))]
    args = [*inputs, "-t", f"{seconds:g}", *codecs, *BITEXACT, *muxer_options, "-f", muxer]
    args.append(str(out))
    run_ffmpeg(args, TIMEOUT)
    return out


def make_media(directory: Path, name: str) -> Path:
    """One of RECIPES, made in `directory` (once: an existing file is reused)."""
    out = directory / name
    if not out.exists():
        video, audio, muxer = RECIPES[name]
        lavfi_media(out, video, audio, muxer)
    return out


def long_video(directory: Path, seconds: float = 20.0) -> Path:
    """High-motion 640x480 at 30 fps and a high bit rate: far too big for any MMS."""
    out = directory / f"long_{seconds:g}s.mp4"
    if not out.exists():
        video = ("-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-pix_fmt", "yuv420p")
        lavfi_media(out, video, _AAC, "mp4", seconds=seconds, size="640x480", rate=30)
    return out


def faststart_video(directory: Path) -> Path:
    """An MP4 with its index first: cut short, it still opens (and claims its length)."""
    out = directory / "faststart.mp4"
    if not out.exists():
        muxer_options = ("-movflags", "+faststart")
        lavfi_media(out, _H264, _AAC, "mp4", muxer_options=muxer_options)
    return out


def rotated(directory: Path, source: Path) -> Path:
    """`source` marked to be shown turned 90°, as phones store portrait video."""
    out = directory / f"rotated-{source.name}"
    if not out.exists():
        run_ffmpeg(["-display_rotation", "90", "-i", str(source), "-c", "copy", str(out)], TIMEOUT)
    return out


def damaged(directory: Path, name: str, source: Path, damage: Callable[[bytes], bytes]) -> Path:
    """A copy of `source` with its bytes changed by `damage`."""
    out = directory / name
    out.write_bytes(damage(source.read_bytes()))
    return out


def copy_as(directory: Path, source: Path, name: str) -> Path:
    """The same bytes under another name (a file whose extension lies)."""
    out = directory / name
    shutil.copyfile(source, out)
    return out
