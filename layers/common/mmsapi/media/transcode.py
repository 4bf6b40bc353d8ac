"""Encode the audio and video of a saved template into MMS renditions (docs/media.md).

Delivery success comes first: every rendition is made to fit a byte budget,
in formats handsets have played for twenty years. A video becomes

- MP4: H.264 Constrained Baseline level 3.0, yuv420p, AAC-LC (+faststart);
- 3GP: H.263 QCIF (176x144, letterboxed), AMR-NB 8 kHz mono.

An audio file becomes MP3 (mono, CBR 32-128 kbps) and AMR-NB (8 kHz mono).

Bit rates come from the budget and the duration: the bits left after the
audio and the container are the video's. A low video bit rate gets fewer
pixels and frames (a small sharp picture beats a large blocky one). If an
encode still overshoots, it is redone once with the rate cut by the overshoot.
Media longer than `max_seconds` is cut there rather than refused.

Every rendition is probed after encoding: codecs, duration (±0.5 s of the
source's) and size. A source that cannot be read, has no stream of its kind,
or does not encode as promised raises TranscodeError; the pipeline reports it
as E002 (audio) or E003 (video). A truncated file whose index promises more
than it holds (MP4/MOV/3GP, WMV) fails that way; a cut stream without an index
(MP3, MPEG-PS, WAV, AVI without its index) is simply the shorter media it is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mmsapi.media import ffmpeg
from mmsapi.media.ffmpeg import INPUT_GUARD, Probe, Stream, TranscodeError, probe

__all__ = [
    "AMR_BUDGET_BYTES",
    "AUDIO_BUDGET_BYTES",
    "MAX_SECONDS",
    "VIDEO_3GP_BUDGET_BYTES",
    "VIDEO_BUDGET_BYTES",
    "Rendition",
    "TranscodeError",
    "transcode_audio",
    "transcode_video",
]

MAX_SECONDS: Final = 30.0  # the longest slide the API allows (spec: "SHOULD NOT exceed 30 s")
VIDEO_BUDGET_BYTES: Final = 600 * 1024  # MP4
VIDEO_3GP_BUDGET_BYTES: Final = 300 * 1024  # older handsets take smaller messages
AUDIO_BUDGET_BYTES: Final = 300 * 1024  # MP3
AMR_BUDGET_BYTES: Final = 64 * 1024  # 30 s of AMR-NB 12.2k is 48 KB
ENCODE_SECONDS: Final = 240.0  # every ffmpeg run of one call: the Lambda has 300 s
DURATION_TOLERANCE: Final = 0.5
MAX_SOURCE_PIXELS: Final = 4096 * 2304  # 4K; larger frames cost minutes and gigabytes

_FILL: Final = 0.95  # aim under the budget: rate control is not exact
_CONTAINER_BYTES: Final = 2048  # MP4/3GP headers...
_CONTAINER_BYTES_PER_SECOND: Final = 400  # ...and sample tables
_MP4_MIN_KBPS: Final = 24.0
# Beyond this rate at 640x480, 25 fps, H.264 Baseline gains nothing visible; smaller
# pictures need less, though more bits per pixel (hence the exponent below 1).
_MP4_MAX_KBPS: Final = 1000.0
_MP4_FULL_PIXEL_RATE: Final = 640 * 480 * 25
_MP4_PIXEL_RATE_EXPONENT: Final = 0.75
_3GP_MIN_KBPS: Final = 16.0
_3GP_MAX_KBPS: Final = 128.0  # plenty for QCIF at 15 fps
_RETRY_MIN_KBPS: Final = 8.0
_QCIF: Final = (176, 144)
_KEYFRAME_SECONDS: Final = 10  # messages are downloaded whole: few keyframes, more picture
_BASELINE: Final = "Constrained Baseline"

# MP4 video rungs: (highest video kbps, bounding box, fps cap), lowest first.
_MP4_RUNGS: Final = (
    (28.0, (128, 96), 10),
    (100.0, (176, 144), 12),
    (200.0, (320, 240), 15),
    (400.0, (480, 360), 20),
    (math.inf, (640, 480), 25),
)
# 3GP frame rate by video kbps: (lowest kbps, fps), highest first.
_3GP_FPS: Final = ((48.0, 15), (24.0, 10), (0.0, 6))
# AAC in MP4 by the rendition's total kbps: (lowest total kbps, channels, kbps, Hz).
_AAC_STEPS: Final = ((384.0, 2, 64, 44100), (192.0, 1, 48, 44100), (96.0, 1, 32, 22050))
_AAC_LOWEST: Final = (1, 24, 16000)
# AMR-NB modes: (kbps, bytes per 20 ms frame including its header), best first.
_AMR_MODES: Final = (
    (12.2, 32),
    (10.2, 27),
    (7.95, 21),
    (7.4, 20),
    (6.7, 18),
    (5.9, 16),
    (5.15, 14),
    (4.75, 13),
)
_AMR_HEADER: Final = b"#!AMR\n"
_AMR_MIN_VIDEO_KBPS: Final = 24.0  # in 3GP, AMR steps down before video drops below this
# MP3 CBR rates (kbps) valid at both 44.1 kHz (MPEG-1) and 22.05 kHz (MPEG-2).
_MP3_KBPS: Final = (32, 40, 48, 56, 64, 80, 96, 112, 128)
_MP3_LOW_RATE_BELOW: Final = 56  # under this, 22.05 kHz sounds better than 44.1


@dataclass(frozen=True)
class Rendition:
    path: Path
    content_type: str
    profile: str  # "mp4", "3gp", "mp3", "amr"
    codec: str  # the main codec as ffprobe names it
    bytes: int
    duration_seconds: float
    width: int | None
    height: int | None


@dataclass(frozen=True)
class _Expect:
    """What a rendition must turn out to be."""

    profile: str
    content_type: str
    kind: str  # the stream that `codec` names: "video" or "audio"
    codec: str
    audio_codec: str | None  # beside the video; None when the source is silent
    budget_bytes: int
    duration: float
    video_profile: str | None = None


@dataclass(frozen=True)
class _Picture:
    size: tuple[int, int]
    fps: int
    kbps: float


@dataclass(frozen=True)
class _Job:
    """One video source to encode, as probed and clipped."""

    source: Path
    video: Stream
    audio: Stream | None
    duration: float


@dataclass(frozen=True)
class _Audio:
    channels: int
    kbps: float
    rate: int


class _Deadline:
    """One time limit over all the ffmpeg runs of a call."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        remaining = self._end - time.monotonic()
        if remaining <= 0:
            raise TranscodeError("encoding took too long")
        return remaining


# ---- public API -------------------------------------------------------------------


def transcode_video(
    source: Path,
    workdir: Path,
    *,
    budget_bytes: int,
    max_seconds: float,
    budget_3gp_bytes: int | None = None,
    seconds: float = ENCODE_SECONDS,
) -> tuple[float, list[Rendition]]:
    """Encode a video into MP4 (within budget_bytes) and 3GP (within budget_3gp_bytes,
    by default the share of budget_bytes that VIDEO_3GP_BUDGET_BYTES is of VIDEO_BUDGET_BYTES).

    Returns the source's duration after clipping to max_seconds and the
    renditions, MP4 first. Raises TranscodeError, also when every ffmpeg run together
    would take more than `seconds` (at most ENCODE_SECONDS; send time passes less).
    """
    deadline = _Deadline(min(seconds, ENCODE_SECONDS))
    info = probe(source, deadline.left())
    video = _require(info.first("video"), "the file has no video stream")
    _check_picture(video)
    job = _Job(source, video, info.first("audio"), _clip(info, max_seconds))
    if budget_3gp_bytes is None:
        budget_3gp_bytes = budget_bytes * VIDEO_3GP_BUDGET_BYTES // VIDEO_BUDGET_BYTES
    mp4 = _encode_mp4(job, workdir / "encoded.mp4", budget_bytes, deadline)
    small = _encode_3gp(job, workdir / "encoded.3gp", budget_3gp_bytes, deadline)
    return job.duration, [mp4, small]


def transcode_audio(
    source: Path,
    workdir: Path,
    *,
    budget_bytes: int,
    max_seconds: float,
    budget_amr_bytes: int | None = None,
) -> tuple[float, list[Rendition]]:
    """Encode audio into MP3 (within budget_bytes) and AMR-NB (within
    budget_amr_bytes, by default the smaller of budget_bytes and AMR_BUDGET_BYTES).

    Returns the source's duration after clipping to max_seconds and the
    renditions, MP3 first. Raises TranscodeError.
    """
    deadline = _Deadline(ENCODE_SECONDS)
    info = probe(source, deadline.left())
    audio = _require(info.first("audio"), "the file has no audio stream")
    duration = _clip(info, max_seconds)
    if budget_amr_bytes is None:
        budget_amr_bytes = min(budget_bytes, AMR_BUDGET_BYTES)
    mp3 = _encode_mp3(source, workdir / "encoded.mp3", audio, duration, budget_bytes, deadline)
    amr = _encode_amr(source, workdir / "encoded.amr", audio, duration, budget_amr_bytes, deadline)
    return duration, [mp3, amr]


# ---- source checks and common arguments -------------------------------------------


def _require(stream: Stream | None, reason: str) -> Stream:
    if stream is None:
        raise TranscodeError(reason)
    return stream


def _check_picture(video: Stream) -> None:
    if not video.width or not video.height:
        raise TranscodeError("the video stream has no picture size")
    if video.width * video.height > MAX_SOURCE_PIXELS:
        raise TranscodeError(f"the video is too large ({video.width}x{video.height})")


def _clip(info: Probe, max_seconds: float) -> float:
    if info.duration_seconds <= 0:
        raise TranscodeError("the file has no duration")
    return min(info.duration_seconds, max_seconds)


def _source_args(source: Path, duration: float) -> list[str]:
    # -t before -i stops reading at the clip: no time spent decoding the rest.
    return [*INPUT_GUARD, "-t", f"{duration:.3f}", "-i", str(source)]


def _clean_args() -> list[str]:
    # No metadata (GPS in phone videos!), chapters, subtitles or data streams.
    return ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]


# ---- video: bit rates and pictures ------------------------------------------------


def _video_kbps(budget_bytes: int, duration: float, audio_kbps: float) -> float:
    """The video bit rate that fills the budget after audio and container."""
    container = _CONTAINER_BYTES + _CONTAINER_BYTES_PER_SECOND * duration
    usable = budget_bytes * _FILL - container
    return usable * 8 / duration / 1000 - audio_kbps


def _total_kbps(budget_bytes: int, duration: float) -> float:
    return _video_kbps(budget_bytes, duration, 0.0)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _fit(source: tuple[int, int], box: tuple[int, int], *, turn: bool) -> tuple[int, int]:
    """The largest even size with the source's aspect within the box, never upscaled.
    With `turn`, a portrait source gets the box turned too."""
    width, height = source
    box_w, box_h = box
    if turn and height > width:
        box_w, box_h = box_h, box_w
    scale = min(1.0, box_w / width, box_h / height)
    return min(_even(width * scale), box_w), min(_even(height * scale), box_h)


def _shown(video: Stream) -> tuple[int, int]:
    return video.width or 2, video.height or 2  # both set: _check_picture ran


def _mp4_picture(video: Stream, kbps: float) -> _Picture:
    box, fps = next((box, fps) for top, box, fps in _MP4_RUNGS if kbps <= top)
    size = _fit(_shown(video), box, turn=True)
    # A source smaller than its rung needs fewer bits: a smaller file delivers better.
    share = size[0] * size[1] * fps / _MP4_FULL_PIXEL_RATE
    return _Picture(size, fps, min(kbps, _MP4_MAX_KBPS * share**_MP4_PIXEL_RATE_EXPONENT))


def _3gp_picture(video: Stream, kbps: float) -> _Picture:
    fps = next(fps for lowest, fps in _3GP_FPS if kbps >= lowest)
    return _Picture(_fit(_shown(video), _QCIF, turn=False), fps, min(kbps, _3GP_MAX_KBPS))


def _aac(total_kbps: float, source_channels: int | None) -> _Audio:
    for lowest, channels, kbps, rate in _AAC_STEPS:
        if total_kbps >= lowest:
            return _Audio(min(channels, source_channels or 1), kbps, rate)
    channels, kbps, rate = _AAC_LOWEST
    return _Audio(channels, kbps, rate)


def _amr_in_3gp(total_kbps: float) -> float:
    """The best AMR mode that leaves the video enough bits, else the lowest."""
    for kbps, _ in _AMR_MODES:
        if total_kbps - kbps >= _AMR_MIN_VIDEO_KBPS:
            return kbps
    return _AMR_MODES[-1][0]


# ---- video: encoder arguments -----------------------------------------------------


def _picture_filter(picture: _Picture, pad: tuple[int, int] | None) -> str:
    width, height = picture.size
    # yadif only touches frames flagged interlaced (MPEG-2 from DVD and TV).
    steps = ["yadif=deint=interlaced", f"scale={width}:{height}:flags=bicubic", "setsar=1"]
    if pad is not None:
        # Centred on even offsets: chroma is subsampled by two.
        x, y = (pad[0] - width) // 4 * 2, (pad[1] - height) // 4 * 2
        steps.append(f"pad={pad[0]}:{pad[1]}:{x}:{y}")
    return ",".join([*steps, "format=yuv420p"])


def _rate_args(kbps: float, *, peak: float) -> list[str]:
    # A VBV buffer of two seconds keeps single-pass rate control near its target.
    return [
        "-b:v",
        f"{kbps:.1f}k",
        "-maxrate",
        f"{kbps * peak:.1f}k",
        "-bufsize",
        f"{kbps * 2:.1f}k",
    ]


def _x264_args(picture: _Picture) -> list[str]:
    return [
        *("-c:v", "libx264", "-preset", "medium", "-profile:v", "baseline", "-level:v", "3.0"),
        *_rate_args(picture.kbps, peak=1.5),
        *("-g", str(picture.fps * _KEYFRAME_SECONDS)),
    ]


def _h263_args(picture: _Picture) -> list[str]:
    # mpegvideo's rate control needs the VBV cap to stay near its target.
    return [
        *("-c:v", "h263"),
        *_rate_args(picture.kbps, peak=1.0),
        *("-g", str(picture.fps * _KEYFRAME_SECONDS)),
    ]


def _aac_args(aac: _Audio) -> list[str]:
    return [
        *("-c:a", "aac", "-profile:a", "aac_low", "-b:a", f"{aac.kbps:g}k"),
        *("-ac", str(aac.channels), "-ar", str(aac.rate)),
    ]


def _amr_args(kbps: float) -> list[str]:
    return ["-c:a", "libopencore_amrnb", "-b:a", f"{kbps * 1000:.0f}", "-ar", "8000", "-ac", "1"]


@dataclass(frozen=True)
class _VideoProfile:
    """How one video rendition is made: picture plan, encoder arguments, container."""

    plan: Callable[[float], _Picture]  # video kbps -> picture
    codec_args: Callable[[_Picture], list[str]]  # video and audio encoders
    muxer: str
    pad: tuple[int, int] | None = None


def _video_args(job: _Job, out: Path, profile: _VideoProfile, picture: _Picture) -> list[str]:
    streams = ["-map", f"0:{job.video.index}"]
    streams += ["-map", f"0:{job.audio.index}"] if job.audio is not None else ["-an"]
    return [
        *_source_args(job.source, job.duration),
        *streams,
        *_clean_args(),
        *("-vf", _picture_filter(picture, profile.pad), "-fpsmax", str(picture.fps)),
        *profile.codec_args(picture),
        # Sparse streams (AVI, MPEG-PS) can queue many packets before the first frame.
        *("-max_muxing_queue_size", "1024", "-movflags", "+faststart"),
        *("-f", profile.muxer, str(out)),
    ]


# ---- video: encoding --------------------------------------------------------------


def _encode_mp4(job: _Job, out: Path, budget_bytes: int, deadline: _Deadline) -> Rendition:
    aac = _aac(_total_kbps(budget_bytes, job.duration), job.audio.channels) if job.audio else None
    kbps = max(_MP4_MIN_KBPS, _video_kbps(budget_bytes, job.duration, aac.kbps if aac else 0))
    profile = _VideoProfile(
        plan=lambda rate: _mp4_picture(job.video, rate),
        codec_args=lambda picture: _x264_args(picture) + (_aac_args(aac) if aac else []),
        muxer="mp4",
    )
    _encode_fitting(job, out, profile, kbps, budget_bytes, deadline)
    expect = _Expect(
        profile="mp4",
        content_type="video/mp4",
        kind="video",
        codec="h264",
        audio_codec="aac" if aac else None,
        budget_bytes=budget_bytes,
        duration=job.duration,
        video_profile=_BASELINE,
    )
    return _verified(out, expect, deadline)


def _encode_3gp(job: _Job, out: Path, budget_bytes: int, deadline: _Deadline) -> Rendition:
    total = _total_kbps(budget_bytes, job.duration)
    amr = _amr_in_3gp(total) if job.audio else None
    kbps = max(_3GP_MIN_KBPS, total - (amr or 0))
    profile = _VideoProfile(
        plan=lambda rate: _3gp_picture(job.video, rate),
        codec_args=lambda picture: _h263_args(picture) + (_amr_args(amr) if amr else []),
        muxer="3gp",
        # H.263 baseline knows only a few fixed sizes: letterbox into QCIF.
        pad=_QCIF,
    )
    _encode_fitting(job, out, profile, kbps, budget_bytes, deadline)
    expect = _Expect(
        profile="3gp",
        content_type="video/3gpp",
        kind="video",
        codec="h263",
        audio_codec="amr_nb" if amr else None,
        budget_bytes=budget_bytes,
        duration=job.duration,
    )
    return _verified(out, expect, deadline)


def _encode_fitting(
    job: _Job,
    out: Path,
    profile: _VideoProfile,
    kbps: float,
    budget_bytes: int,
    deadline: _Deadline,
) -> None:
    """Encode at `kbps`; on overshoot, once more with the rate cut by the overshoot
    (and the picture planned again for that rate)."""
    picture = profile.plan(kbps)
    ffmpeg.run_ffmpeg(_video_args(job, out, profile, picture), deadline.left())
    size = _size(out)
    if size > budget_bytes:
        retry = profile.plan(_retry_kbps(picture.kbps, size, budget_bytes, job.duration))
        ffmpeg.run_ffmpeg(_video_args(job, out, profile, retry), deadline.left())


def _retry_kbps(kbps: float, size: int, budget_bytes: int, duration: float) -> float:
    """The rate minus the overshoot spread over the duration. For sizes proportional to
    the rate this is the rate cut by the overshoot ratio; it cuts deeper when part of the
    size is fixed (the first keyframe of a short clip), which is when the ratio falls short."""
    excess_kbps = (size - budget_bytes * _FILL) * 8 / duration / 1000
    return max(_RETRY_MIN_KBPS, kbps - excess_kbps)


# ---- audio ------------------------------------------------------------------------


def _mp3_kbps(budget_bytes: int, duration: float) -> int:
    """The highest CBR rate that fits; the lowest when none does (verification decides)."""
    fitting = budget_bytes * _FILL * 8 / duration / 1000
    return max((k for k in _MP3_KBPS if k <= fitting), default=_MP3_KBPS[0])


def _audio_args(source: Path, audio: Stream, duration: float) -> list[str]:
    return [*_source_args(source, duration), "-map", f"0:{audio.index}", "-vn", *_clean_args()]


def _encode_mp3(
    source: Path, out: Path, audio: Stream, duration: float, budget_bytes: int, deadline: _Deadline
) -> Rendition:
    kbps = _mp3_kbps(budget_bytes, duration)
    rate = 22050 if kbps < _MP3_LOW_RATE_BELOW else 44100
    args = [
        *_audio_args(source, audio, duration),
        *("-c:a", "libmp3lame", "-b:a", f"{kbps}k", "-ac", "1", "-ar", str(rate)),
        # No ID3 tags: nothing of the source's metadata travels.
        *("-id3v2_version", "0", "-write_id3v1", "0", "-f", "mp3", str(out)),
    ]
    ffmpeg.run_ffmpeg(args, deadline.left())
    expect = _Expect("mp3", "audio/mpeg", "audio", "mp3", None, budget_bytes, duration)
    return _verified(out, expect, deadline)


def _amr_mode(budget_bytes: int, duration: float) -> float:
    """The best AMR-NB mode whose exact size (fixed-size frames) fits the budget."""
    frames = math.ceil(duration / 0.02) + 1
    for kbps, frame_bytes in _AMR_MODES:
        if len(_AMR_HEADER) + frames * frame_bytes <= budget_bytes:
            return kbps
    raise TranscodeError(f"{duration:.1f} s of AMR audio cannot fit in {budget_bytes} bytes")


def _encode_amr(
    source: Path, out: Path, audio: Stream, duration: float, budget_bytes: int, deadline: _Deadline
) -> Rendition:
    args = [
        *_audio_args(source, audio, duration),
        *_amr_args(_amr_mode(budget_bytes, duration)),
        *("-f", "amr", str(out)),
    ]
    ffmpeg.run_ffmpeg(args, deadline.left())
    expect = _Expect("amr", "audio/amr", "audio", "amr_nb", None, budget_bytes, duration)
    return _verified(out, expect, deadline)


# ---- verification -----------------------------------------------------------------


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise TranscodeError(f"ffmpeg wrote no {path.suffix} file") from exc


def _verified(out: Path, expect: _Expect, deadline: _Deadline) -> Rendition:
    """Probe the encoded file and hold it to what was asked, else TranscodeError."""
    size = _size(out)
    if size > expect.budget_bytes:
        raise TranscodeError(
            f"the {expect.profile} rendition needs {size} bytes, over its budget of "
            f"{expect.budget_bytes}"
        )
    info = probe(out, deadline.left())
    main = _check_codecs(info, expect)
    if abs(info.duration_seconds - expect.duration) > DURATION_TOLERANCE:
        raise TranscodeError(
            f"the {expect.profile} rendition lasts {info.duration_seconds:.2f} s instead of "
            f"{expect.duration:.2f} s: the source is damaged or truncated"
        )
    return Rendition(
        path=out,
        content_type=expect.content_type,
        profile=expect.profile,
        codec=main.codec_name,
        bytes=size,
        duration_seconds=info.duration_seconds,
        width=main.width,
        height=main.height,
    )


def _check_codecs(info: Probe, expect: _Expect) -> Stream:
    main = info.first(expect.kind)
    if main is None or main.codec_name != expect.codec:
        raise TranscodeError(f"the {expect.profile} rendition has no {expect.codec} stream")
    if expect.video_profile is not None and main.profile != expect.video_profile:
        raise TranscodeError(f"the {expect.profile} rendition's video is {main.profile}")
    if expect.audio_codec is not None:
        audio = info.first("audio")
        if audio is None or audio.codec_name != expect.audio_codec:
            raise TranscodeError(
                f"the {expect.profile} rendition has no {expect.audio_codec} audio"
            )
    return main
