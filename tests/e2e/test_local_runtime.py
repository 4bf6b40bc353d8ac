"""`make local` end to end: the local runtime as a subprocess, driven over HTTP.

One runtime process serves the whole module (start-up is the slow part). Media and
postbacks go to one pytest-httpserver on loopback, which only the local runtime
may fetch from. The last test stops the runtime with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from mmsapi.media.ffmpeg import probe
from tests.media import VCARD, photo_jpeg, tone_wav
from tests.media_av import make_media

ROOT = Path(__file__).resolve().parents[2]
KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"
START_TIMEOUT = 60.0
POSTBACK_TIMEOUT = 20.0
ENCODE_TIMEOUT = 120.0


# ---------------------------------------------------------------- the runtime under test


@dataclass
class Postback:
    body: bytes
    headers: dict[str, str]

    @property
    def fields(self) -> dict[str, str]:
        return answer(self.body)[1]


@dataclass
class Postbacks:
    """What the postback URL received (pytest-httpserver calls `record` on its thread)."""

    received: list[Postback] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: Request) -> Response:
        with self.lock:
            headers = {name.lower(): value for name, value in request.headers.items()}
            self.received.append(Postback(request.get_data(), headers))
        return Response("ok", status=200)

    def wait_for(self, found: Callable[[Postback], bool], timeout: float) -> Postback:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for postback in self.received:
                    if found(postback):
                        return postback
            time.sleep(0.1)
        raise AssertionError(f"no such postback within {timeout} s; got {self.received}")

    def all(self) -> list[Postback]:
        with self.lock:
            return list(self.received)


@dataclass
class LocalRuntime:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    api_url: str
    data_dir: Path
    output: Path
    web: HTTPServer
    postbacks: Postbacks

    @property
    def state_file(self) -> Path:
        return self.data_dir / "runtime.json"

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def post(self, path: str, body: str, content_type: str = "application/xml") -> bytes:
        request = urllib.request.Request(
            self.api_url + path,
            data=body.encode("utf-8"),
            headers={"Content-Type": content_type},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            data: bytes = response.read()
            return data

    def _aws(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Connection settings of the runtime's embedded AWS, and its environment."""
        state = json.loads(self.state_file.read_text())
        connection = {
            "endpoint_url": state["aws_endpoint"],
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        return connection, state["environment"]

    def template(self, mms_id: str) -> dict[str, Any]:
        connection, env = self._aws()
        item = boto3.client("dynamodb", **connection).get_item(
            TableName=env["MMS_TEMPLATES_TABLE"], Key={"mms_id": {"N": mms_id}}
        )["Item"]
        doc: dict[str, Any] = json.loads(item["doc"]["S"])
        return doc

    def media(self, key: str) -> bytes:
        connection, env = self._aws()
        s3 = boto3.client("s3", **connection)
        data: bytes = s3.get_object(Bucket=env["MMS_MEDIA_BUCKET"], Key=key)["Body"].read()
        return data

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command line of the project (admin, invoke) beside the running runtime."""
        return subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answer(xml: bytes) -> tuple[str, dict[str, str]]:
    """The root tag of an XML answer and its flat fields."""
    root = etree.fromstring(xml)
    return str(root.tag), {str(child.tag): child.text or "" for child in root}


def stop(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Ctrl-C, as a terminal would send it; the exit code, or None if it hung."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """Given `python -m local.runtime` on free ports, postbacks going to a local server."""
    tmp = tmp_path_factory.mktemp("local-runtime")
    web = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    web.start()
    postbacks = Postbacks()
    web.expect_request("/postback", method="POST").respond_with_handler(postbacks.record)
    port, aws_port = free_port(), free_port()
    env = {
        **os.environ,
        "MMS_LOCAL_PORT": str(port),
        "MMS_LOCAL_AWS_PORT": str(aws_port),
        "MMS_LOCAL_DATA_DIR": str(tmp / "data"),
        "MMS_LOCAL_POSTBACK_URL": web.url_for("/postback"),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MMS_LOCAL_API_KEY"):
        env.pop(name, None)
    output = tmp / "runtime.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.runtime"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    started = LocalRuntime(
        process, env, f"http://127.0.0.1:{port}", tmp / "data", output, web, postbacks
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not started.state_file.exists():
            if process.poll() is not None:
                pytest.fail(f"the runtime exited with {process.returncode}:\n{started.text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the runtime was not ready in {START_TIMEOUT} s:\n{started.text()}")
            time.sleep(0.1)
        yield started
    finally:
        if stop(process, 10) is None:
            process.kill()
            process.wait()
        web.clear()
        web.stop()


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
    done = runtime.run("-m", "local.admin", "list")
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
