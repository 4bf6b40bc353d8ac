"""`make local` end to end: the local runtime as a subprocess, driven over HTTP.

One runtime process serves the whole module (start-up is the slow part). Media and
postbacks go to one pytest-httpserver on loopback, which only the local runtime
may fetch from. The last test stops the runtime with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from mmsapi.media.ffmpeg import probe
from tests.e2e.runtime import KEY, LocalRuntime, Postback, answer, started_runtime, stop
from tests.media import VCARD, photo_jpeg, tone_wav
from tests.media_av import make_media

POSTBACK_TIMEOUT = 20.0
ENCODE_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """Given `python -m local.runtime` on free ports, postbacks going to a local server."""
    with started_runtime(tmp_path_factory.mktemp("local-runtime")) as started:
        yield started


def save_xml(
    web: HTTPServer,
    *,
    audio: bool,
    name: str = "FuelTheFire",
    video: str = "",
    audio_path: str = "/audio/1.wav",
) -> str:
    """The saveMMS example of the API documents (000), its media on the local server."""
    audio_element = f"<audio><url>{web.url_for(audio_path)}</url></audio>" if audio else ""
    video_slide = f"<slide><video><url>{web.url_for(video)}</url></video></slide>" if video else ""
    return f"""<request>
    <action>saveMMS</action>
    <api-key>{KEY}</api-key>
    <message-subject>The subject</message-subject>
    <name>{name}</name>
    <slide>
        <image><url>{web.url_for("/images/1.jpg")}</url></image>
        {audio_element}
        <message-text>Here is some text</message-text>
        <duration>5</duration>
    </slide>
    <slide>
        <message-text>My Contact</message-text>
        <vcard><url>{web.url_for("/2.vcf")}</url></vcard>
        <duration>10</duration>
    </slide>
    {video_slide}
</request>"""


@pytest.fixture(scope="module")
def media(runtime: LocalRuntime, tmp_path_factory: pytest.TempPathFactory) -> HTTPServer:
    """Given the example's picture, sound and contact card on the local server, a video
    made by ffmpeg, and a file that claims to be MP3 but is not."""
    web = runtime.web
    video = make_media(tmp_path_factory.mktemp("av"), "h264_aac.mp4").read_bytes()
    web.expect_request("/video/1.mp4").respond_with_data(video, content_type="video/mp4")
    web.expect_request("/audio/broken.mp3").respond_with_data(
        b"ID3" + b"\x00not audio" * 300, content_type="audio/mpeg"
    )
    web.expect_request("/images/1.jpg").respond_with_data(photo_jpeg(), content_type="image/jpeg")
    web.expect_request("/audio/1.wav").respond_with_data(tone_wav(), content_type="audio/x-wav")
    web.expect_request("/2.vcf").respond_with_data(VCARD, content_type="text/x-vcard")
    return web


def is_n003_for(mms_id: str) -> Callable[[Postback], bool]:
    return lambda p: p.fields.get("code") == "N003" and p.fields.get("mms-id") == mms_id


# ---------------------------------------------------------------- over HTTP


def send_xml(mms_id: str) -> str:
    return (
        f"<request><action>sendSavedMMS</action><api-key>{KEY}</api-key><mms-id>{mms_id}</mms-id>"
        "<to>14044790000</to><from>28444</from><service-id>12345</service-id>"
        "<fallback-sms-text>See it here</fallback-sms-text></request>"
    )


@pytest.mark.e2e
def test_seed_example_with_audio_and_video_is_locked_then_encoded(
    runtime: LocalRuntime, media: HTTPServer, tmp_path: Path
) -> None:
    # Given the documents' saveMMS example (image + audio) with a video slide added
    xml = save_xml(media, audio=True, video="/video/1.mp4")
    # When it is posted to the API
    root, got = answer(runtime.post("/ep/v1/", xml))
    assert (root, got["status"]) == ("response", "Success"), got
    mms_id = got["mms-id"]
    # Then sending it at once is refused: encoding in progress
    _, refused = answer(runtime.post("/ep/v1/", send_xml(mms_id)))
    assert refused["error-code"] == "E626", refused
    # And N003 arrives once the state machine has encoded audio and video
    runtime.postbacks.wait_for(is_n003_for(mms_id), ENCODE_TIMEOUT)
    template = runtime.template(mms_id)
    assert template["status"] == "ready"
    # And each slide lasts as long as its media (1 s of tone, 2 s of video), not the 5 s given
    assert [s["duration"] for s in template["slides"]] == [1, 10, 2]
    # And the renditions are in S3, with the codecs ffprobe finds in them
    codecs = {}
    for slide in template["slides"]:
        for item in slide["media"]:
            for rendition in item["renditions"]:
                path = tmp_path / rendition["key"].rsplit("/", 1)[1]
                path.write_bytes(runtime.media(rendition["key"]))
                assert path.stat().st_size == rendition["bytes"]
                found = probe(path)
                codecs[rendition["profile"]] = {s.codec_name for s in found.streams}
    assert codecs["mp3"] == {"mp3"}
    assert codecs["amr"] == {"amr_nb"}
    assert "h264" in codecs["mp4"]
    assert "amr_nb" in codecs["3gp"]
    # And now it can be sent
    _, accepted = answer(runtime.post("/ep/v1/", send_xml(mms_id)))
    assert accepted["status"] == "Success", accepted


@pytest.mark.e2e
def test_corrupt_audio_gives_e002_and_an_unusable_template(
    runtime: LocalRuntime, media: HTTPServer
) -> None:
    # Given the example whose audio URL serves something that is not audio
    xml = save_xml(media, audio=True, audio_path="/audio/broken.mp3", name="broken")
    _, got = answer(runtime.post("/ep/v1/", xml))
    assert got["status"] == "Success", got
    # When its encoding ends, Then E002 names the audio URL
    postback = runtime.postbacks.wait_for(
        lambda p: p.fields.get("code") == "E002" and p.fields.get("mms-id") == got["mms-id"],
        ENCODE_TIMEOUT,
    )
    assert postback.fields["audio-name"] == media.url_for("/audio/broken.mp3")
    # And the mms-id cannot be sent
    _, refused = answer(runtime.post("/ep/v1/", send_xml(got["mms-id"])))
    assert refused["error-code"] == "E241", refused


@pytest.mark.e2e
def test_seed_example_without_audio_gets_a_signed_n003(
    runtime: LocalRuntime, media: HTTPServer
) -> None:
    # Given the example without its audio, and the secret the banner shows
    secret = re.search(r"Postback secret\s+([0-9a-f]{64})", runtime.text())
    assert secret is not None, runtime.text()
    # When it is posted
    _, got = answer(runtime.post("/ep/v1/", save_xml(media, audio=False)))
    assert got["status"] == "Success", got
    # Then N003 for its mms-id reaches the postback URL, signed with the account's secret
    postback = runtime.postbacks.wait_for(is_n003_for(got["mms-id"]), POSTBACK_TIMEOUT)
    assert postback.fields["origin"] == "MMS_MT"
    expected = hmac.new(secret.group(1).encode(), postback.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(postback.headers["x-mms-signature"], f"sha256={expected}")
    assert postback.headers["x-mms-postback-id"]


@pytest.mark.e2e
def test_legacy_save_gets_a_legacy_answer(runtime: LocalRuntime) -> None:
    # Given the legacy dialect's saveMMS
    xml = (
        f"<REQUEST><ACTION>saveMMS</ACTION><API_KEY>{KEY}</API_KEY><SUBJECT>The subject</SUBJECT>"
        "<NAME>The name</NAME><SLIDE><TEXT>Here is some text</TEXT></SLIDE></REQUEST>"
    )
    # When it is posted to the legacy path
    root, got = answer(runtime.post("/API/wxml/1.3/index.php", xml))
    # Then the answer is in the legacy dialect
    assert (root, got["STATUS"]) == ("RESPONSE", "Success"), got
    assert got["MMSID"].isdigit()


@pytest.mark.e2e
def test_form_post_without_trailing_slash_is_routed(runtime: LocalRuntime) -> None:
    # Given a legacy client posting a form field XMLDATA, as curl -d does
    xml = f"<REQUEST><ACTION>getMMSTemplates</ACTION><API_KEY>{KEY}</API_KEY></REQUEST>"
    body = "XMLDATA=" + urllib.parse.quote(xml)
    # When it goes to /ep/v1 (no slash) as application/x-www-form-urlencoded
    root, got = answer(runtime.post("/ep/v1", body, "application/x-www-form-urlencoded"))
    # Then the API reads it (the body reached the handler base64-encoded, as on AWS)
    assert (root, got["STATUS"]) == ("RESPONSE", "Success"), got


@pytest.mark.e2e
def test_wrong_key_is_e104(runtime: LocalRuntime) -> None:
    # Given a request with a key no account has
    xml = "<request><action>saveMMS</action><api-key>not-the-key</api-key></request>"
    # When it is posted
    _, got = answer(runtime.post("/ep/v1/", xml))
    # Then it fails with E104
    assert (got["status"], got["error-code"]) == ("Failure", "E104"), got


@pytest.mark.e2e
def test_unknown_route_is_404(runtime: LocalRuntime) -> None:
    # Given a path that no function of the template serves
    # When it is asked for
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(runtime.api_url + "/nowhere", timeout=10)
    # Then API Gateway's 404 comes back
    assert caught.value.code == 404
    assert json.loads(caught.value.read()) == {"message": "Not Found"}


@pytest.mark.e2e
def test_admin_lists_the_demo_account(runtime: LocalRuntime) -> None:
    # Given the running runtime's state directory in the environment
    # When `mmsapi-admin list` runs
    done = runtime.run("-m", "mmsapi.admin", "list")
    # Then it shows the demo account and its shortcode
    assert done.returncode == 0, done.stderr
    assert re.search(r"28444:US.*demo", done.stdout), done.stdout


@pytest.mark.e2e
def test_invoke_runs_the_api_function_with_an_event_file(runtime: LocalRuntime) -> None:
    # Given an API Gateway event file
    # When local.invoke runs ApiFunction with it
    done = runtime.run("-m", "local.invoke", "ApiFunction", "events/api/save-text-current.json")
    # Then stdout holds the handler's result: HTTP 200 with a Success answer
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["statusCode"] == 200
    assert answer(result["body"].encode())[1]["status"] == "Success", result


@pytest.mark.e2e
def test_ctrl_c_stops_everything_cleanly(runtime: LocalRuntime) -> None:
    # Given the running runtime (this test comes last in the module)
    # When it gets Ctrl-C
    code = stop(runtime.process, 10)
    # Then it exits 0 within 10 s, quietly, and removes its state file
    assert code == 0, runtime.text()
    assert not runtime.state_file.exists()
    assert "Traceback" not in runtime.text()
    assert "stopped" in runtime.text().splitlines()[-1]
