"""Adapting a saved template to one handset (services/adapt.py, docs/handset-adaptation.md),
the rendition cache in front of it, and the handset cache.

Images are made by Pillow, video by ffmpeg (tests/media_av.py); audio/video
renditions that are only sized, never played, are filler bytes.
"""

from __future__ import annotations

import dataclasses
import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from local.stack import Stack
from mmsapi.carrier.message import HandsetProfile, OutgoingMessage
from mmsapi.carrier.profiles import GENERIC, PROFILES, get_profile
from mmsapi.media.types import STORED_EXTENSION, MediaKind
from mmsapi.models import Rendition, StoredMedia, Template, TemplateSlide, TemplateStatus
from mmsapi.services import adapt
from mmsapi.services.adapt import (
    DoesNotFit,
    LruRenditionCache,
    S3RenditionCache,
    adapt_message,
)
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.handsets import REFRESH_AFTER, HandsetCache, HandsetEntry
from mmsapi.store.media import MediaStore
from tests.media import VCARD, flat_png, photo_jpeg
from tests.media_av import make_media

KB = 1024
PDF = b"%PDF-1.4\n" + b"0" * 20_000 + b"\n%%EOF\n"
ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Sale\r\n"
    b"END:VEVENT\r\nEND:VCALENDAR\r\n"
)


class Files:
    """The media bucket as the adaptation sees it: a loader that counts its reads."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.reads: Counter[str] = Counter()

    def load(self, key: str) -> bytes:
        self.reads[key] += 1
        return self.data[key]

    def media(self, slide: int, kind: MediaKind, content_type: str, data: bytes) -> StoredMedia:
        key = f"slide-{slide}/{kind.value}/original.{STORED_EXTENSION[content_type]}"
        self.data[key] = data
        return StoredMedia(
            kind=kind,
            source_url=f"https://example.com/{key}",
            content_type=content_type,
            original_key=key,
            original_bytes=len(data),
            rendition_key=key,
            rendition_type=content_type,
            rendition_bytes=len(data),
        )

    def timed(
        self, slide: int, kind: MediaKind, forms: dict[str, int], original: bytes = b"\0"
    ) -> StoredMedia:
        """Audio or video with a rendition of each (content type: size), best first."""
        media = self.media(
            slide, kind, "video/mp4" if kind is MediaKind.VIDEO else "audio/wav", original
        )
        for content_type, size in forms.items():
            key = f"slide-{slide}/{kind.value}/encoded.{STORED_EXTENSION[content_type]}"
            self.data[key] = bytes([len(self.data) % 256]) * size
            media.renditions.append(
                Rendition(key=key, content_type=content_type, profile="x", codec="x", bytes=size)
            )
        media.duration_seconds = 2.0
        return media


def template(*slides: list[StoredMedia], texts: list[str | None] | None = None) -> Template:
    return Template(
        mms_id=35674,
        account_id="acct-1",
        name="campaign",
        subject="Sale",
        status=TemplateStatus.READY,
        slides=[
            TemplateSlide(text=(texts or [])[i] if i < len(texts or []) else None, media=media)
            for i, media in enumerate(slides)
        ],
    )


def link_for(media: StoredMedia) -> str:
    return f"https://m.example.com/v/{media.kind.value}"


def send(
    tpl: Template,
    profile: HandsetProfile,
    files: Files,
    texts: list[str | None] | None = None,
    cache: adapt.RenditionCache | None = None,
) -> OutgoingMessage:
    message = adapt_message(
        tpl,
        profile,
        load=files.load,
        subject="Sale",
        slide_texts=texts if texts is not None else [s.text for s in tpl.slides],
        link_for=link_for,
        cache=cache,
    )
    assert message.air_bytes() <= profile.max_message_bytes
    return message


def part(message: OutgoingMessage, content_id: str) -> bytes:
    return next(p.data for p in message.parts if p.content_id == content_id)


@pytest.fixture
def files() -> Files:
    return Files()


@pytest.fixture
def stats() -> adapt.AdaptStats:
    """The counters as they were before the test."""
    return dataclasses.replace(adapt.STATS)


def spent(before: adapt.AdaptStats) -> tuple[int, int, int]:
    now = adapt.STATS
    return (
        now.adaptations - before.adaptations,
        now.image_encodes - before.image_encodes,
        now.reencodes - before.reencodes,
    )


# ---- layout and forms ------------------------------------------------------------


def test_parts_have_deterministic_ids_and_the_slides_name_them(files: Files) -> None:
    # Given an image + audio slide and a text slide
    tpl = template(
        [
            files.media(1, MediaKind.IMAGE, "image/jpeg", photo_jpeg(320, 240)),
            files.timed(1, MediaKind.AUDIO, {"audio/mpeg": 40 * KB, "audio/amr": 8 * KB}),
        ],
        [],
        texts=["Hello Bill", "Bye"],
    )
    # When it is adapted for an iPhone
    message = send(tpl, get_profile("iphone"), files)
    # Then every part has an id from its slide and kind, and the SMIL layout names them
    assert [p.content_id for p in message.parts] == [
        "s1-image.jpg",
        "s1-audio.mp3",
        "s1-text.txt",
        "s2-text.txt",
    ]
    assert all(p.filename == p.content_id for p in message.parts)
    first, second = message.slides
    assert (first.image, first.audio, first.text) == ("s1-image.jpg", "s1-audio.mp3", "s1-text.txt")
    assert second.text == "s2-text.txt"
    assert second.image is None
    assert part(message, "s1-text.txt") == b"Hello Bill"
    text_types = {p.content_type for p in message.parts if p.content_id.endswith(".txt")}
    assert text_types == {"text/plain; charset=utf-8"}
    assert message.subject == "Sale"


@pytest.mark.parametrize(
    ("profile_id", "audio", "video"),
    [
        ("iphone", "s1-audio.mp3", "s2-video.mp4"),
        ("android", "s1-audio.mp3", "s2-video.mp4"),
        ("generic", "s1-audio.amr", "s2-video.3gp"),
        ("feature_phone", "s1-audio.amr", "s2-video.3gp"),
    ],
)
def test_each_handset_gets_the_forms_it_plays(
    files: Files, profile_id: str, audio: str, video: str
) -> None:
    # Given audio and video with both renditions, small enough for any handset
    tpl = template(
        [files.timed(1, MediaKind.AUDIO, {"audio/mpeg": 30 * KB, "audio/amr": 10 * KB})],
        [files.timed(2, MediaKind.VIDEO, {"video/mp4": 60 * KB, "video/3gpp": 40 * KB})],
    )
    # When it is adapted for the handset
    message = send(tpl, get_profile(profile_id), files)
    # Then it gets the forms it prefers: MP4/MP3 on smartphones, 3GP/AMR elsewhere
    assert (message.slides[0].audio, message.slides[1].video) == (audio, video)


def test_video_goes_to_its_smaller_rendition_when_the_larger_does_not_fit(files: Files) -> None:
    # Given a video whose MP4 is over an old Android's 600 KB but whose 3GP is not
    tpl = template(
        [files.timed(1, MediaKind.VIDEO, {"video/mp4": 590 * KB, "video/3gpp": 250 * KB})]
    )
    # When it is adapted for an old Android phone and a recent one
    old = send(tpl, get_profile("android_legacy"), files)
    new = send(tpl, get_profile("android"), files)
    # Then the old one gets the 3GP, the recent one the MP4
    assert old.slides[0].video == "s1-video.3gp"
    assert new.slides[0].video == "s1-video.mp4"


# ---- objects by OS -----------------------------------------------------------------


def object_template(files: Files) -> Template:
    return template(
        [files.media(1, MediaKind.VCARD, "text/vcard", VCARD)],
        [files.media(2, MediaKind.PDF, "application/pdf", PDF)],
        [files.media(3, MediaKind.ICAL, "text/calendar", ICS)],
        [files.media(4, MediaKind.PASSBOOK, "application/vnd.apple.pkpass", b"PK\3\4pass")],
        texts=["Our card", "The menu", None, "Your pass"],
    )


def test_ios_gets_vcard_ical_and_pdf_as_parts_and_passbook_as_a_link(files: Files) -> None:
    # Given a vCard, a PDF, an iCal and a Passbook slide
    tpl = object_template(files)
    # When it is adapted for an iPhone
    message = send(tpl, get_profile("iphone"), files)
    # Then vCard, PDF and iCal are binary parts, the pass a link in its slide's text
    assert [s.objects for s in message.slides] == [
        ["s1-vcard.vcf"],
        ["s2-pdf.pdf"],
        ["s3-ical.ics"],
        [],
    ]
    assert part(message, "s2-pdf.pdf") == PDF
    assert part(message, "s4-text.txt") == b"Your pass\nhttps://m.example.com/v/passbook"


@pytest.mark.parametrize("profile_id", ["android", "android_legacy", "generic", "feature_phone"])
def test_others_get_vcard_as_a_part_and_ical_pdf_as_links(files: Files, profile_id: str) -> None:
    # Given the same slides
    tpl = object_template(files)
    # When it is adapted for Android, an unknown or a feature phone
    message = send(tpl, get_profile(profile_id), files)
    # Then only the vCard is a binary part; iCal and PDF are links after the slide's text
    assert [s.objects for s in message.slides] == [["s1-vcard.vcf"], [], [], []]
    assert part(message, "s1-vcard.vcf") == VCARD
    assert part(message, "s2-text.txt") == b"The menu\nhttps://m.example.com/v/pdf"
    assert part(message, "s3-text.txt") == b"https://m.example.com/v/ical"
    assert not any(p.content_type == "application/pdf" for p in message.parts)


def test_an_object_bigger_than_any_message_goes_as_a_link(files: Files) -> None:
    # Given a 2 MB PDF
    big = b"%PDF-1.4\n" + bytes(2 * 1024 * KB)
    tpl = template([files.media(1, MediaKind.PDF, "application/pdf", big)])
    # When it is adapted for an iPhone (which takes PDFs, but only 1 MB in all)
    message = send(tpl, get_profile("iphone"), files)
    # Then it goes as a link rather than not at all
    assert message.slides[0].objects == []
    assert part(message, "s1-text.txt") == b"https://m.example.com/v/pdf"


# ---- fitting ----------------------------------------------------------------------


def test_a_template_too_big_for_a_feature_phone_gets_smaller_images_and_fits(
    files: Files,
) -> None:
    # Given three 1600x1200 photos (about 650 KB each) and MP3 + AMR audio: 2 MB in all
    photos = [photo_jpeg(1600, 1200, seed=s) for s in (1, 2, 3)]
    tpl = template(
        [
            files.media(1, MediaKind.IMAGE, "image/jpeg", photos[0]),
            files.timed(1, MediaKind.AUDIO, {"audio/mpeg": 120 * KB, "audio/amr": 30 * KB}),
        ],
        [files.media(2, MediaKind.IMAGE, "image/jpeg", photos[1])],
        [files.media(3, MediaKind.IMAGE, "image/jpeg", photos[2])],
        texts=["One", "Two", "Three"],
    )
    profile = get_profile("feature_phone")
    # When it is adapted for a feature phone (300 KB)
    message = send(tpl, profile, files)
    # Then every image is smaller, within the phone's screen, and the message fits
    for n in (1, 2, 3):
        image = part(message, f"s{n}-image.jpg")
        assert len(image) < len(photos[n - 1]) // 4
        assert max(_size(image)) <= profile.max_image_dimension
    assert message.slides[0].audio == "s1-audio.amr"
    assert message.air_bytes() <= 300 * KB


def test_audio_goes_to_amr_only_when_images_cannot_shrink_further(files: Files) -> None:
    # Given eight image slides and MP3 audio that nearly fill an old Android's 600 KB
    slides = [
        [files.media(n, MediaKind.IMAGE, "image/jpeg", photo_jpeg(640, 480, seed=n))]
        for n in range(1, 9)
    ]
    slides[0].append(
        files.timed(1, MediaKind.AUDIO, {"audio/mpeg": 500 * KB, "audio/amr": 40 * KB})
    )
    tpl = template(*slides)
    # When it is adapted
    message = send(tpl, get_profile("android_legacy"), files)
    # Then the MP3 gave way to AMR, and every image is still there
    assert message.slides[0].audio == "s1-audio.amr"
    assert all(s.image for s in message.slides)


def test_a_template_that_cannot_fit_does_not_fit(files: Files, stats: adapt.AdaptStats) -> None:
    # Given a video whose smallest rendition is far over a feature phone's 300 KB,
    # and an original that cannot be re-encoded
    tpl = template(
        [files.timed(1, MediaKind.VIDEO, {"video/mp4": 900 * KB, "video/3gpp": 700 * KB})]
    )
    # When it is adapted for a feature phone
    # Then it does not fit (the caller sends the fallback SMS), after trying to re-encode
    with pytest.raises(DoesNotFit, match="over the handset's limit"):
        send(tpl, get_profile("feature_phone"), files)
    assert spent(stats)[2] == 1


def test_video_for_a_phone_without_video_does_not_fit(files: Files) -> None:
    # Given a small video
    tpl = template([files.timed(1, MediaKind.VIDEO, {"video/mp4": 50 * KB, "video/3gpp": 30 * KB})])
    # When it is adapted for a phone that plays no video
    # Then it does not fit
    with pytest.raises(DoesNotFit, match="plays no video"):
        send(tpl, get_profile("basic_phone"), files)


def test_a_video_too_big_in_every_rendition_is_re_encoded_to_fit(
    files: Files, tmp_path: Path, stats: adapt.AdaptStats
) -> None:
    # Given a video whose stored 3GP (a real 2 s video, made to look 400 KB) is too big
    # for a feature phone, and whose original is a 4K file that must not be read
    media = files.timed(
        1, MediaKind.VIDEO, {"video/mp4": 900 * KB, "video/3gpp": 400 * KB}, original=b"4K"
    )
    rendition_3gp = media.renditions[1].key
    files.data[rendition_3gp] = make_media(tmp_path, "h264_aac.mp4").read_bytes()
    tpl = template([media], texts=["Watch this"])
    # When it is adapted for a feature phone
    message = send(tpl, get_profile("feature_phone"), files)
    # Then the video was re-encoded into a real 3GP that fits, from the smallest
    # rendition larger than the budget (the 3GP), never from the original
    video = part(message, "s1-video.3gp")
    assert video[4:8] == b"ftyp"
    assert b"3gp" in video[8:12]
    assert len(video) < 300 * KB
    assert spent(stats)[2] == 1
    assert files.reads[rendition_3gp] == 1
    assert files.reads[media.original_key] == 0


@pytest.mark.parametrize("profile_id", sorted(PROFILES))
def test_every_message_fits_its_handset(files: Files, profile_id: str) -> None:
    # Given templates of every shape: photos, flat art, audio, video, objects, long texts
    photo = photo_jpeg(1600, 1200)
    shapes = [
        template([files.media(1, MediaKind.IMAGE, "image/jpeg", photo)], texts=["x" * 5000]),
        template(
            [
                files.media(1, MediaKind.IMAGE, "image/png", flat_png(1200, 900)),
                files.timed(1, MediaKind.AUDIO, {"audio/mpeg": 280 * KB, "audio/amr": 45 * KB}),
            ],
            [files.media(2, MediaKind.VCARD, "text/vcard", VCARD)],
            [files.media(3, MediaKind.PDF, "application/pdf", PDF)],
        ),
        template(
            *[[files.media(n, MediaKind.IMAGE, "image/jpeg", photo)] for n in range(1, 9)],
            texts=["Ünïcödé ✓ 🎉"] * 8,
        ),
        template([files.timed(1, MediaKind.VIDEO, {"video/mp4": 80 * KB, "video/3gpp": 60 * KB})]),
    ]
    profile = get_profile(profile_id)
    for tpl in shapes:
        # When each is adapted for the handset
        try:
            message = send(tpl, profile, files)
        except DoesNotFit:
            # Then it fits on the air, or (a phone without video) it does not fit at all
            assert not profile.video_types
            continue
        assert message.air_bytes() <= profile.max_message_bytes


# ---- the rendition cache -----------------------------------------------------------


def campaign(files: Files) -> Template:
    return template(
        [
            files.media(1, MediaKind.IMAGE, "image/jpeg", photo_jpeg(1600, 1200)),
            files.timed(1, MediaKind.AUDIO, {"audio/mpeg": 200 * KB, "audio/amr": 40 * KB}),
        ],
        [files.media(2, MediaKind.PDF, "application/pdf", PDF)],
        texts=["Hi {$name}", None],
    )


def test_a_cache_hit_returns_the_same_parts_without_encoding(
    files: Files, stats: adapt.AdaptStats
) -> None:
    # Given a template already sent once to a generic handset
    tpl = campaign(files)
    cache = LruRenditionCache()
    first = send(tpl, GENERIC, files, ["Hi Bill", None], cache)
    reads = sum(files.reads.values())
    # When it is sent to another recipient with the same profile
    second = send(tpl, GENERIC, files, ["Hi Alexandra", None], cache)
    # Then the binary parts are the same, nothing was encoded or read again
    binary = [p for p in first.parts if not p.content_id.endswith(".txt")]
    assert binary == [p for p in second.parts if not p.content_id.endswith(".txt")]
    assert part(second, "s1-text.txt") == b"Hi Alexandra"
    assert part(second, "s2-text.txt") == b"https://m.example.com/v/pdf"
    assert spent(stats)[:2] == (1, 1)
    assert sum(files.reads.values()) == reads


def test_profiles_are_cached_apart(files: Files, stats: adapt.AdaptStats) -> None:
    # Given one cache
    tpl = campaign(files)
    cache = LruRenditionCache()
    # When the template goes to two recipients of each of three profiles
    for profile_id in ("iphone", "android", "feature_phone"):
        for _ in range(2):
            send(tpl, get_profile(profile_id), files, cache=cache)
    # Then it was adapted once per profile
    assert spent(stats)[0] == 3


def test_a_recipient_with_far_longer_text_is_adapted_alone(
    files: Files, stats: adapt.AdaptStats
) -> None:
    # Given parts cached for a recipient with a short text, fitted tightly to 300 KB
    tpl = campaign(files)
    cache = LruRenditionCache()
    first = send(tpl, GENERIC, files, ["Hi", None], cache)
    # When another recipient's custom text takes more than the room left over
    room = GENERIC.max_message_bytes - first.air_bytes()
    longer = "Hi " + "y" * (int(room / 1.37) + 100)
    message = send(tpl, GENERIC, files, [longer, None], cache)
    # Then their message is adapted for them alone, and still fits
    assert spent(stats)[0] == 2
    assert part(message, "s1-text.txt") == longer.encode()
    assert cache.get(tpl, GENERIC.profile_id) is not None


def test_does_not_fit_is_cached_too(files: Files, stats: adapt.AdaptStats) -> None:
    # Given a template that does not fit a phone without video
    tpl = template([files.timed(1, MediaKind.VIDEO, {"video/mp4": 50 * KB})])
    cache = LruRenditionCache()
    # When it is sent twice to such phones
    for _ in range(2):
        with pytest.raises(DoesNotFit):
            send(tpl, get_profile("basic_phone"), files, cache=cache)
    # Then the verdict was reached once
    assert spent(stats)[0] == 1


def test_the_memory_cache_drops_the_least_recently_used(files: Files) -> None:
    # Given a memory cache that holds about one adapted template
    tpl = campaign(files)
    cache = LruRenditionCache(max_bytes=100 * KB)
    send(tpl, GENERIC, files, cache=cache)
    assert cache.get(tpl, GENERIC.profile_id) is not None
    # When another profile's parts arrive
    send(tpl, get_profile("feature_phone"), files, cache=cache)
    # Then the older entry is gone and the newer one kept
    assert cache.get(tpl, GENERIC.profile_id) is None
    assert cache.get(tpl, "feature_phone") is not None


def test_s3_keeps_adapted_parts_for_other_instances(
    stack: Stack, files: Files, stats: adapt.AdaptStats
) -> None:
    # Given a template sent by one Lambda instance through memory and S3
    tpl = campaign(files)
    media = MediaStore()
    first = send(tpl, GENERIC, files, cache=LruRenditionCache(S3RenditionCache(media)))
    # When another instance (empty memory) sends it with the same profile
    second = send(tpl, GENERIC, files, cache=LruRenditionCache(S3RenditionCache(media)))
    # Then it reads the parts from S3 beside the template and adapts nothing
    assert second.parts == first.parts
    assert spent(stats)[0] == 1
    prefix = "templates/acct-1/35674/adapted/generic/"
    assert sorted(media.keys(prefix)) == [
        prefix + "manifest.json",
        prefix + "s1-audio.amr",
        prefix + "s1-image.jpg",
    ]


def test_a_damaged_s3_entry_is_a_miss(stack: Stack, files: Files) -> None:
    # Given parts cached in S3, one of them since overwritten
    tpl = campaign(files)
    media = MediaStore()
    send(tpl, GENERIC, files, cache=S3RenditionCache(media))
    media.put("templates/acct-1/35674/adapted/generic/s1-image.jpg", b"cut", "image/jpeg")
    # When the cache is read
    # Then it is a miss, not a broken message
    assert S3RenditionCache(media).get(tpl, "generic") is None
    assert S3RenditionCache(media).get(tpl, "iphone") is None


@pytest.mark.parametrize(
    "manifest", [b"{not json", b"[]", b'{"version": 1, "parts": [{"slide": "one"}]}', b"\xff"]
)
def test_a_corrupt_s3_manifest_is_a_miss(stack: Stack, files: Files, manifest: bytes) -> None:
    # Given parts cached in S3 whose manifest was since overwritten with something else
    tpl = campaign(files)
    media = MediaStore()
    send(tpl, GENERIC, files, cache=S3RenditionCache(media))
    assert S3RenditionCache(media).get(tpl, "generic") is not None
    media.put("templates/acct-1/35674/adapted/generic/manifest.json", manifest, "text/plain")
    # When the cache is read
    # Then it is a miss (adapting again repairs it), not an error
    assert S3RenditionCache(media).get(tpl, "generic") is None


# ---- the handset cache -------------------------------------------------------------


@pytest.fixture
def handsets(stack: Stack) -> HandsetCache:
    """Given the handset table, from template.yaml (created here only if it lacks one)."""
    if "HandsetsTable" not in stack.physical:
        aws.dynamodb().create_table(
            TableName=get_settings().handsets_table,
            AttributeDefinitions=[{"AttributeName": "number", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "number", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        aws.dynamodb().update_time_to_live(
            TableName=get_settings().handsets_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    return HandsetCache()


def test_a_learnt_handset_is_found_for_a_year(handsets: HandsetCache) -> None:
    # Given a number whose handset a delivery report told
    now = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
    uaprof = "http://www.apple.com/mms/uaprof.rdf"
    handsets.put("14044790000", "iphone", uaprof, "delivery-report", now=now)
    # When it is looked up within the year, and after
    found = handsets.get("14044790000", now=now + timedelta(days=364))
    late = handsets.get("14044790000", now=now + timedelta(days=366))
    # Then it is found with what was learnt, then no more (TTL deletes lazily)
    assert found is not None
    assert (found.profile_id, found.ua_prof, found.learned_from) == (
        "iphone",
        uaprof,
        "delivery-report",
    )
    assert found.updated_at == now
    assert found.expires_at == int((now + timedelta(days=365)).timestamp())
    assert late is None
    assert handsets.get("14045550100") is None


def test_a_new_report_refreshes_the_handset(handsets: HandsetCache) -> None:
    # Given a number cached from a DDM a while ago
    then = datetime(2024, 3, 1, tzinfo=UTC)
    handsets.put("447700900123", "android_legacy", None, "ddm", now=then)
    # When a later report tells a new phone
    handsets.put(
        "447700900123", "android", "http://www.google.com/oha/rdf/x.xml", "delivery-report"
    )
    # Then the newer handset is kept, for a year from now
    found = handsets.get("447700900123")
    assert found is not None
    assert found.profile_id == "android"
    assert found.expires_at > (datetime.now(UTC) + timedelta(days=364)).timestamp()


def test_a_report_repeating_the_handset_is_written_only_when_due_a_refresh(
    handsets: HandsetCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a number whose handset a report told on 1 March
    then = datetime(2026, 3, 1, tzinfo=UTC)
    uaprof = "http://www.apple.com/mms/uaprof.rdf"
    handsets.learn("14044790000", "iphone", uaprof, "delivery-report", now=then)
    writes: list[str] = []
    real_put = handsets.put

    def counted_put(number: str, *args: Any, **kwargs: Any) -> HandsetEntry:
        writes.append(number)
        return real_put(number, *args, **kwargs)

    monkeypatch.setattr(handsets, "put", counted_put)
    # When later reports tell the same within the refresh period, Then nothing is written
    for days in (0, 1, 29):
        moment = then + timedelta(days=days)
        found = handsets.learn("14044790000", "iphone", uaprof, "delivery-report", now=moment)
        assert found.updated_at == then
    assert writes == []
    # When one tells another UAProf (a new phone), Then it is written at once
    newer = "http://www.google.com/oha/rdf/x.xml"
    moment = then + timedelta(days=2)
    assert handsets.learn("14044790000", "android", newer, "ddm", now=moment).updated_at == moment
    assert writes == ["14044790000"]
    # And the same handset past the refresh period is written again: a year from then
    later = moment + REFRESH_AFTER
    entry = handsets.learn("14044790000", "android", newer, "delivery-report", now=later)
    assert writes == ["14044790000"] * 2
    assert entry.expires_at == int((later + timedelta(days=365)).timestamp())
    stored = handsets.get("14044790000", now=later)
    assert stored is not None
    assert stored.updated_at == later


def test_the_handset_table_expires_entries(stack: Stack, handsets: HandsetCache) -> None:
    # Given the emulated table
    # Then DynamoDB's TTL is on expires_at
    described = aws.dynamodb().describe_time_to_live(TableName=handsets.table)
    assert described["TimeToLiveDescription"].get("AttributeName") == "expires_at"


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size
