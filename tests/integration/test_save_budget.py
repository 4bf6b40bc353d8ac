"""saveMMS within API Gateway's limits: the request budget, and large media streamed to S3."""

from __future__ import annotations

import copy
import hashlib
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from local.aws_gate import AwsGate
from local.functions import FakeLambdaContext
from local.stack import Stack
from mmsapi.budget import Budget
from mmsapi.media import images
from mmsapi.media.types import MediaKind
from mmsapi.services.api import handle
from mmsapi.settings import get_settings
from mmsapi.store import aws
from tests.conftest import Client, load_event
from tests.integration.helpers import answer, bucket_keys
from tests.integration.test_save import save_xml
from tests.lambda_context import load_handler_module
from tests.media import photo_jpeg

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part


def video_bytes(size: int) -> bytes:
    """An MP4-looking file (ftyp box first) of `size` bytes."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    block = hashlib.sha256(b"video").digest() * 4096  # 128 KiB, not all zeros
    body = (block * (size // len(block) + 1))[: size - len(head)]
    return head + body


@pytest.fixture
def media_server() -> Iterator[HTTPServer]:
    """A threaded media server: a slow answer does not hold up the others."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def streamed_over_5_mib(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> None:
    """Given files over 5 MiB streamed to S3 in 5 MiB parts."""
    monkeypatch.setenv("MMS_STREAM_OVER_BYTES", str(PART))
    monkeypatch.setenv("MMS_STREAM_PART_BYTES", str(PART))
    get_settings.cache_clear()


def trickle(
    data: bytes, content_type: str, *, fast: int, every: float, stop: threading.Event
) -> Callable[[Request], Response]:
    """A handler sending the first `fast` bytes at once, then 1 KiB every `every` s."""

    def chunks() -> Iterator[bytes]:
        yield data[:fast]
        for start in range(fast, len(data), 1024):
            if stop.wait(every):
                return
            yield data[start : start + 1024]

    def handler(_request: Request) -> Response:
        response = Response(chunks(), content_type=content_type, direct_passthrough=True)
        response.headers["Content-Length"] = str(len(data))
        return response

    return handler


def uploads_in_progress(stack: Stack) -> list[dict[str, Any]]:
    got = aws.s3().list_multipart_uploads(Bucket=stack.physical["MediaBucket"])
    uploads: list[dict[str, Any]] = got.get("Uploads", [])  # type: ignore[assignment]
    return uploads


def api_event(body: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("api/save-text-current.json"))
    event["body"] = body
    return event


@pytest.mark.usefixtures("streamed_over_5_mib")
def test_media_slower_than_the_budget_answers_e35x_in_time_and_leaves_nothing(
    client: Client, stack: Stack, media_server: HTTPServer, iam_gate: AwsGate
) -> None:
    # Given a 12 MiB video that arrives at once (streamed to S3 while it downloads),
    # an audio file that trickles for ~6 s, and a 12 MiB video that stalls after
    # its first part, all on one template
    stop = threading.Event()
    media_server.expect_request("/fast.mp4").respond_with_data(
        video_bytes(12 * MIB), content_type="video/mp4"
    )
    audio = b"ID3" + bytes(64 * 1024)
    media_server.expect_request("/slow.mp3").respond_with_handler(
        trickle(audio, "audio/mpeg", fast=1024, every=0.1, stop=stop)
    )
    media_server.expect_request("/stalls.mp4").respond_with_handler(
        trickle(video_bytes(12 * MIB), "video/mp4", fast=6 * MIB, every=10, stop=stop)
    )
    xml = save_xml(
        f"<slide><video><url>{media_server.url_for('/fast.mp4')}</url></video></slide>"
        f"<slide><audio><url>{media_server.url_for('/slow.mp3')}</url></audio></slide>"
        f"<slide><video><url>{media_server.url_for('/stalls.mp4')}</url></video></slide>"
    )
    # And a Lambda invocation with 5 s left (a 2 s budget after the 3 s margin)
    lambda_context = FakeLambdaContext(
        "test-function", "arn:aws:lambda:us-east-1:123456789012:function:f", 512, 5.0
    )
    handler = load_handler_module("api").handler
    try:
        # When the API handler answers it
        started = time.monotonic()
        result = handler(api_event(xml), lambda_context)
        elapsed = time.monotonic() - started
        # Then it answers in XML, HTTP 200, before the invocation's time is up
        assert result["statusCode"] == 200
        assert elapsed < 5.0 - 1.0, elapsed
        got = answer(result["body"].encode("utf-8"))
        # with the trickling slide's "Could not copy" (the first failure in slide order)
        assert got["status"] == "Failure", got
        assert got["error-code"] == "E352", got
        assert got["error-info"].startswith("Could not copy Audio file in slide 2.")
        # And nothing is left in S3: the streamed video removed, the stalled upload aborted
        assert bucket_keys(stack) == []
        deadline = time.monotonic() + 3
        while uploads_in_progress(stack) and time.monotonic() < deadline:
            time.sleep(0.05)  # the stalled fetch ends at the budget, then aborts its upload
        assert uploads_in_progress(stack) == []
        assert bucket_keys(stack) == []
        # (the fast video had been stored, and was deleted; the stalled one was aborted)
        made = [c.operation for c in iam_gate.calls if c.function == "ApiFunction"]
        assert made.count("CompleteMultipartUpload") == 1, made
        assert made.count("AbortMultipartUpload") == 1, made
        assert "DeleteObjects" in made
        # And no template was saved
        total, _ = client.ctx.templates.page(client.account.account_id, None, 1, 10)
        assert total == 0
    finally:
        stop.set()


def test_budget_running_out_while_fitting_an_image_removes_what_was_stored(
    client: Client, stack: Stack, media_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an image whose fitting takes longer than the request's 1 s budget
    url = media_server.url_for("/photo.jpg")
    media_server.expect_request("/photo.jpg").respond_with_data(
        photo_jpeg(200, 200), content_type="image/jpeg"
    )
    real_adapt = images.adapt_image
    fitting_may_end = threading.Event()
    fitting_ended = threading.Event()

    def slow_adapt(data: bytes, **kwargs: Any) -> images.AdaptedImage:
        fitting_may_end.wait(timeout=30)
        fitting_ended.set()
        return real_adapt(data, **kwargs)

    monkeypatch.setattr(images, "adapt_image", slow_adapt)
    xml = save_xml(f"<slide><image><url>{url}</url></image></slide>")
    # When it is saved
    started = time.monotonic()
    try:
        got = answer(handle(client.ctx, xml.encode(), {}, client.source_ip, Budget.of(1.0)))
        elapsed = time.monotonic() - started
        answered_while_fitting = not fitting_ended.is_set()
    finally:
        fitting_may_end.set()
    # Then the slide's E351 comes while the fitting still runs (it is not waited for),
    # after the budget and within the bounded wait for removing what was stored (a
    # loaded machine's slack added: the ordering above is the precise claim)
    assert answered_while_fitting
    removal_wait = max(0.5, get_settings().request_safety_margin - 1.0)
    assert 1.0 <= elapsed < 1.0 + removal_wait + 5.0
    assert got["error-code"] == "E351", got
    assert "ran out of time" in got["error-info"]
    # And its original, stored before the fitting, is removed
    assert bucket_keys(stack) == []


def test_a_slow_s3_cannot_hold_the_answer_and_a_late_upload_removes_itself(
    client: Client, stack: Stack, media_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given S3 holding each upload until the test lets it end, and a request with a 1 s
    # budget
    url = media_server.url_for("/photo.jpg")
    media_server.expect_request("/photo.jpg").respond_with_data(
        photo_jpeg(200, 200), content_type="image/jpeg"
    )
    real_put = client.ctx.media.put
    finished: list[str] = []
    s3_may_answer = threading.Event()

    def slow_put(key: str, body: bytes, content_type: str) -> None:
        s3_may_answer.wait(timeout=30)
        real_put(key, body, content_type)
        finished.append(key)

    monkeypatch.setattr(client.ctx.media, "put", slow_put)
    xml = save_xml(f"<slide><image><url>{url}</url></image></slide>")
    # When it is saved
    started = time.monotonic()
    try:
        got = answer(handle(client.ctx, xml.encode(), {}, client.source_ip, Budget.of(1.0)))
        elapsed = time.monotonic() - started
        answered_while_uploading = not finished
    finally:
        s3_may_answer.set()
    # Then the slide's E351 comes at the budget, while S3 still holds the upload
    assert answered_while_uploading
    assert 1.0 <= elapsed < 1.0 + 5.0  # a loaded machine's slack; the order is the claim
    assert got["error-code"] == "E351", got
    # And the upload that ended after the answer removed its own file
    deadline = time.monotonic() + 5
    while not finished and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(finished) == 1
    while bucket_keys(stack) and time.monotonic() < deadline:
        time.sleep(0.05)  # its own removal follows its put
    assert bucket_keys(stack) == []


@pytest.mark.usefixtures("streamed_over_5_mib")
def test_large_video_is_streamed_to_s3_in_parts(
    client: Client, stack: Stack, media_server: HTTPServer
) -> None:
    # Given a 12 MiB video
    data = video_bytes(12 * MIB)
    media_server.expect_request("/big.mp4").respond_with_data(data, content_type="video/mp4")
    xml = save_xml(f"<slide><video><url>{media_server.url_for('/big.mp4')}</url></video></slide>")
    # When it is saved
    got = answer(client.post(xml))
    # Then the template holds it, stored whole by a multipart upload of three parts
    assert got["status"] == "Success", got
    template = client.ctx.templates.get(int(got["mms-id"]))
    assert template is not None
    video = template.slides[0].media_of(MediaKind.VIDEO)
    assert video is not None
    assert video.original_bytes == len(data)
    assert template.size_bytes == len(data)
    stored = aws.s3().get_object(Bucket=stack.physical["MediaBucket"], Key=video.original_key)
    assert stored["ETag"].strip('"').endswith("-3")
    assert stored["ContentType"] == "video/mp4"
    assert stored["Body"].read() == data


class _DigestingS3:
    """Stands in for S3's multipart calls: keeps a digest of each object, not its bytes
    (moto keeps every byte, which would hide what the save itself holds)."""

    def __init__(self) -> None:
        self.parts: list[int] = []
        self.digest = hashlib.sha256()
        self.completed: list[str] = []

    def create_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"UploadId": "u1"}

    def upload_part(self, **params: Any) -> dict[str, str]:
        body: bytes = params["Body"]
        self.parts.append(len(body))
        self.digest.update(body)
        return {"ETag": f'"{params["PartNumber"]}"'}

    def complete_multipart_upload(self, **params: Any) -> dict[str, str]:
        self.completed.append(params["Key"])
        return {}

    def abort_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {}


@pytest.mark.usefixtures("streamed_over_5_mib")
def test_streaming_holds_a_few_parts_not_the_file(
    client: Client, stack: Stack, media_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a 60 MiB video, and S3's part uploads counted and digested
    data = video_bytes(60 * MIB)
    media_server.expect_request("/huge.mp4").respond_with_data(data, content_type="video/mp4")
    fake = _DigestingS3()
    monkeypatch.setattr(aws, "s3", lambda: fake)
    xml = save_xml(f"<slide><video><url>{media_server.url_for('/huge.mp4')}</url></video></slide>")
    # When it is saved, Python's allocations traced
    tracemalloc.start()
    try:
        got = answer(client.post(xml))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then it is saved, every byte uploaded, in 5 MiB parts
    assert got["status"] == "Success", got
    assert fake.digest.digest() == hashlib.sha256(data).digest()
    assert fake.parts == [PART] * 12
    assert len(fake.completed) == 1
    # And at most a few parts were held at once, never the file
    print(f"peak traced memory {peak / MIB:.1f} MiB for a {len(data) / MIB:.0f} MiB video")
    assert peak < 4 * PART, f"peak {peak / MIB:.1f} MiB"
