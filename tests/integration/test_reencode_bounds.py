"""Send-time re-encoding is bounded (issue 8): it starts from a stored rendition, not the
original (up to 200 MiB of 4K), streams its source to disk, and stops in time for the
send to end within the deliver function's invocation, which then falls back."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from local.stack import Stack
from mmsapi.carrier.profiles import get_profile
from mmsapi.media import transcode
from mmsapi.media.transcode import transcode_video
from mmsapi.media.types import MediaKind
from mmsapi.models import (
    Rendition,
    Send,
    SendStatus,
    StoredMedia,
    Template,
    TemplateSlide,
    TemplateStatus,
)
from mmsapi.services import adapt
from mmsapi.services.adapt import DoesNotFit, LruRenditionCache, adapt_message, reencode_within
from mmsapi.settings import get_settings
from mmsapi.store.media import MediaStore
from tests.conftest import Client, load_event
from tests.integration.conftest import DELIVERED_TO, Carrier
from tests.integration.helpers import postback_events
from tests.lambda_context import FakeLambdaContext, load_handler_module
from tests.media_av import make_media

KB = 1024
MIB = 1024 * KB
FEATURE_PHONE = get_profile("feature_phone")  # 300 KB messages, 3GP video only


def _video_template(store: MediaStore, rendition: bytes, original_bytes: int) -> Template:
    """A ready template with one video: its 3GP rendition is `rendition` (claimed 400 KB,
    too big for a feature phone), its MP4 900 KB of filler, its original a large file."""
    prefix = "templates/acct-1/35674/slide-1/"
    store.put(prefix + "video/mp4.mp4", b"\0" * 900 * KB, "video/mp4")
    store.put(prefix + "video/3gp.3gp", rendition, "video/3gpp")
    renditions = [
        Rendition(key=prefix + "video/mp4.mp4", content_type="video/mp4", profile="mp4",
                  codec="h264", bytes=900 * KB),
        Rendition(key=prefix + "video/3gp.3gp", content_type="video/3gpp", profile="3gp",
                  codec="h263", bytes=400 * KB),
    ]  # fmt: skip
    media = StoredMedia(
        kind=MediaKind.VIDEO,
        source_url="https://media.example.com/4k.mp4",
        content_type="video/mp4",
        original_key=prefix + "original.mp4",
        original_bytes=original_bytes,
        rendition_key=renditions[0].key,
        rendition_type="video/mp4",
        rendition_bytes=900 * KB,
        duration_seconds=2.0,
        renditions=renditions,
    )
    return Template(
        mms_id=35674,
        account_id="acct-1",
        name="video",
        subject="Watch",
        status=TemplateStatus.READY,
        slides=[TemplateSlide(text="Watch this", media=[media])],
    )


def _adapt(template: Template, store: MediaStore, **extra: Any) -> Any:
    return adapt_message(
        template,
        FEATURE_PHONE,
        load=store.get,
        download=store.download,
        subject="Watch",
        slide_texts=["Watch this"],
        link_for=lambda _media: "https://m.example.com/v/1",
        **extra,
    )


def test_re_encoding_streams_a_rendition_and_never_reads_a_large_original(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a video whose original is 64 MiB in S3, and whose 3GP is a real video
    store = MediaStore()
    template = _video_template(store, make_media(tmp_path, "h264_aac.mp4").read_bytes(), 64 * MIB)
    store.put(template.slides[0].media[0].original_key, b"\0" * 64 * MIB, "video/mp4")
    read: list[str] = []
    streamed: list[str] = []

    def get(key: str) -> bytes:
        read.append(key)
        return MediaStore.get(store, key)

    def download(key: str, path: Path) -> None:
        streamed.append(key)
        MediaStore.download(store, key, path)

    monkeypatch.setattr(store, "get", get)
    monkeypatch.setattr(store, "download", download)
    # When it is adapted for a feature phone (the 3GP must be re-encoded smaller)
    tracemalloc.start()
    try:
        message = _adapt(template, store)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then the 3GP rendition was streamed to disk and re-encoded; the original never read
    video = next(p.data for p in message.parts if p.content_id == "s1-video.3gp")
    assert len(video) < 300 * KB
    original = template.slides[0].media[0].original_key
    assert streamed == [template.slides[0].media[0].renditions[1].key]
    assert original not in read + streamed
    # And the process held a few MiB at most, whatever the original's size
    print(f"re-encode with a 64 MiB original: peak {peak / MIB:.1f} MiB traced")  # with -s
    assert peak < 8 * MIB, peak


def test_re_encoding_gets_only_the_time_the_invocation_has_left(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a send whose invocation has 60 s left, and a re-encode that records its time
    store = MediaStore()
    template = _video_template(store, make_media(tmp_path, "h264_aac.mp4").read_bytes(), 1000)
    given: list[float] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        given.append(kwargs["seconds"])
        return transcode_video(*args, **kwargs)

    monkeypatch.setattr(transcode, "transcode_video", recording)  # adapt imports it late
    # When it is adapted within that invocation
    with reencode_within(60_000):
        _adapt(template, store)
    # Then ffmpeg got what is left after the MM7 submission's reserve, not its 240 s
    settings = get_settings()
    reserve = settings.mm7_timeout + adapt.SEND_RESERVE_SECONDS + settings.request_safety_margin
    [seconds] = given
    assert 0 < seconds <= 60 - reserve


def test_with_too_little_time_left_nothing_is_re_encoded_and_nothing_cached(
    stack: Stack, tmp_path: Path
) -> None:
    # Given an invocation that has less left than a re-encode and the send's reserve need
    store = MediaStore()
    template = _video_template(store, make_media(tmp_path, "h264_aac.mp4").read_bytes(), 1000)
    cache = LruRenditionCache()
    before = adapt.STATS.reencodes
    reserve_ms = int((get_settings().mm7_timeout + adapt.SEND_RESERVE_SECONDS) * 1000)
    # When it is adapted, Then it does not fit (the send falls back) without ffmpeg
    with reencode_within(reserve_ms + 2000), pytest.raises(DoesNotFit):
        _adapt(template, store, cache=cache)
    assert adapt.STATS.reencodes == before
    # And that verdict is not kept: a send with time enough re-encodes it
    assert cache.get(template, FEATURE_PHONE.profile_id) is None
    message = _adapt(template, store, cache=cache)
    assert any(p.content_id == "s1-video.3gp" for p in message.parts)
    assert adapt.STATS.reencodes == before + 1


def test_a_send_that_cannot_re_encode_in_time_ends_as_fallback_sms(
    client: Client, stack: Stack, carrier: Carrier, tmp_path: Path
) -> None:
    # Given a queued send of a video too big for the recipient's feature phone
    ctx = client.ctx
    template = _video_template(ctx.media, make_media(tmp_path, "h264_aac.mp4").read_bytes(), 1000)
    template.account_id = client.account.account_id
    ctx.templates.create(template)
    ctx.handsets.put(DELIVERED_TO, "feature_phone", None, "test")
    ctx.sends.create(
        Send(
            send_id=9101,
            account_id=client.account.account_id,
            mms_id=template.mms_id,
            to=DELIVERED_TO,
            sender="28444",
            requested_from="28444",
            service_id="12345",
            fallback_sms_text="Your video:",
        )
    )
    event = load_event("deliver/unknown-send.json")
    event["Records"][0]["body"] = json.dumps({"send_id": 9101})
    before = adapt.STATS.reencodes
    # When the deliver function runs with 30 s left (less than re-encoding may take)
    result = load_handler_module("deliver").handler(event, FakeLambdaContext())
    # Then no re-encode started, and the send went out as its fallback SMS
    assert result == {"batchItemFailures": []}
    assert adapt.STATS.reencodes == before
    [sms] = carrier.sms.sent
    assert sms["text"].startswith("Your video: ")
    stored = ctx.sends.get(9101)
    assert stored is not None
    assert (stored.status, stored.sent_as) == (SendStatus.SENT, "SMS")
    [event_told] = postback_events(stack)
    assert event_told["detail"]["code"] == "N101"
    assert event_told["detail"]["fields"]["sent-as"] == "SMS"
