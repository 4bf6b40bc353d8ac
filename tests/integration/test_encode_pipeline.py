"""The encoding state machine really executing (moto's ASL interpreter) with the real
transcode and finalize handlers, as in the local runtime."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from local.stack import Stack
from mmsapi.media.ffmpeg import probe
from mmsapi.media.types import MediaKind
from mmsapi.models import Template, TemplateStatus
from tests.conftest import Client
from tests.integration.helpers import answer, postback_events
from tests.media import photo_jpeg
from tests.media_av import make_media

pytestmark = pytest.mark.state_machines_execute


@pytest.fixture(scope="module")
def av_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("av")


def wait_until_encoded(client: Client, mms_id: int, seconds: float = 120) -> Template:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        template = client.ctx.templates.get(mms_id)
        assert template is not None
        if template.status is not TemplateStatus.ENCODING:
            return template
        time.sleep(0.25)
    raise AssertionError(f"template {mms_id} still encoding after {seconds} s")


def serve_file(httpserver: HTTPServer, path: Path, content_type: str) -> str:
    httpserver.expect_request(f"/{path.name}").respond_with_data(
        path.read_bytes(), content_type=content_type
    )
    return httpserver.url_for(f"/{path.name}")


def test_audio_and_video_are_encoded_then_ready_with_real_durations(
    client: Client, functions_bridged: Stack, httpserver: HTTPServer, av_dir: Path, tmp_path: Path
) -> None:
    # Given a slide with image + audio and a slide with video, served locally
    audio = serve_file(httpserver, make_media(av_dir, "tone.wav"), "audio/wav")
    video = serve_file(httpserver, make_media(av_dir, "h264_aac.mp4"), "video/mp4")
    httpserver.expect_request("/p.jpg").respond_with_data(photo_jpeg(), content_type="image/jpeg")
    xml = (
        f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>av</name>"
        "<message-subject>s</message-subject>"
        f"<slide><image><url>{httpserver.url_for('/p.jpg')}</url></image>"
        f"<audio><url>{audio}</url></audio><duration>9</duration></slide>"
        f"<slide><video><url>{video}</url></video><message-text>v</message-text></slide>"
        "</request>"
    )
    # When it is saved
    got = answer(client.post(xml))
    assert got["status"] == "Success", got
    # Then, once the execution ends, the template is ready with each slide as long as its media
    template = wait_until_encoded(client, int(got["mms-id"]))
    assert template.status is TemplateStatus.READY
    assert [s.duration for s in template.slides] == [2, 2]
    # And every rendition is in S3 with the codec ffprobe finds in it
    expected: dict[MediaKind, dict[str, str | None]] = {
        MediaKind.AUDIO: {"mp3": "mp3", "amr": "amr_nb"},
        MediaKind.VIDEO: {"mp4": "h264", "3gp": None},
    }
    for slide, kind in ((0, MediaKind.AUDIO), (1, MediaKind.VIDEO)):
        media = template.slides[slide].media_of(kind)
        assert media is not None
        assert [r.profile for r in media.renditions] == list(expected[kind])
        for rendition in media.renditions:
            local = tmp_path / Path(rendition.key).name
            local.write_bytes(client.ctx.media.get(rendition.key))
            found = probe(local)
            assert abs(found.duration_seconds - 2.0) < 0.5
            assert local.stat().st_size == rendition.bytes
            codec = expected[kind][rendition.profile]
            if codec is not None:
                assert rendition.codec == codec
            assert rendition.codec in {s.codec_name for s in found.streams}
    # And N003 is announced
    assert [e["detail"]["code"] for e in postback_events(functions_bridged)] == ["N003"]


def test_corrupt_audio_fails_with_e002_and_the_template_is_unusable(
    client: Client, functions_bridged: Stack, httpserver: HTTPServer
) -> None:
    # Given an audio URL serving garbage with an audio type
    httpserver.expect_request("/bad.mp3").respond_with_data(
        b"ID3" + b"\x00garbage" * 200, content_type="audio/mpeg"
    )
    url = httpserver.url_for("/bad.mp3")
    xml = (
        f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>bad</name>"
        f"<message-subject>s</message-subject><slide><audio><url>{url}</url></audio></slide>"
        "</request>"
    )
    got = answer(client.post(xml))
    assert got["status"] == "Success", got
    # When the encoding ends
    template = wait_until_encoded(client, int(got["mms-id"]))
    # Then the template failed with E002 naming the audio URL
    assert (template.status, template.failure_code) == (TemplateStatus.FAILED, "E002")
    [event] = postback_events(functions_bridged)
    assert event["detail"]["code"] == "E002"
    assert event["detail"]["fields"]["audio-name"] == url
