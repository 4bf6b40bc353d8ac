"""No template item can approach DynamoDB's 400 KB (issue 8, item 1): every field it
stores has a documented limit, and the account limits that scale it have ceilings.

The worst template is built from those limits, every character 4 bytes wide in UTF-8,
with what finalize adds (two renditions per audio or video), and measured as DynamoDB
counts an item.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from mmsapi import records
from mmsapi.errors import ApiError
from mmsapi.media.types import MediaKind
from mmsapi.models import (
    DEFAULT_CAPS,
    LIMIT_CEILINGS,
    Limits,
    MediaRef,
    Rendition,
    SaveRequest,
    SlideSpec,
    StoredMedia,
    Template,
    TemplateSlide,
    TemplateStatus,
)
from mmsapi.rules import MAX_CLIENT_REFERENCE, MAX_MEDIA_URL, MAX_NAME, validate_save
from mmsapi.services.accounts import InvalidInputError, check_limits
from mmsapi.store.templates import TemplateStore
from mmsapi.text import MAX_FALLBACK_CHARS, MERGE_TAG
from tests.conftest import Client
from tests.integration.helpers import answer

MAX_ITEM_BYTES = 350_000  # well below DynamoDB's 400 KB
WIDEST = "\U0001f600"  # 4 bytes in UTF-8: the widest a character gets in a stored item
# Stored keys: templates/<account id>/<mms-id>/slide-<n>/<kind>/<profile>.<ext> is under
# 100 characters; twice that covers any account id.
KEY = "k" * 200
# The most media one slide stores: image + audio (video allows only text, an object
# goes alone, a text file becomes the slide's text: docs/actions.md#slides).
MEDIA_PER_SLIDE = (MediaKind.IMAGE, MediaKind.AUDIO)
RENDITIONS_PER_MEDIA = 2  # finalize records MP4 + 3GP, or MP3 + AMR (media/transcode.py)


def _item_bytes(template: Template) -> int:
    """The size of a template's item as DynamoDB counts it: names and UTF-8 values."""
    item = TemplateStore(table="t")._item(template)
    return sum(len(k) + len(next(iter(v.values())).encode()) for k, v in item.items())


def _media(kind: MediaKind) -> StoredMedia:
    renditions = [
        Rendition(
            key=KEY,
            content_type="c" * 64,
            profile="p" * 16,
            codec="c" * 32,
            bytes=DEFAULT_CAPS[MediaKind.VIDEO],
            width=4096,
            height=4096,
        )
        for _ in range(RENDITIONS_PER_MEDIA)
    ]
    return StoredMedia(
        kind=kind,
        source_url="https://" + WIDEST * (MAX_MEDIA_URL - len("https://")),
        content_type="c" * 64,
        original_key=KEY,
        original_bytes=DEFAULT_CAPS[MediaKind.VIDEO],
        rendition_key=KEY,
        rendition_type="c" * 64,
        rendition_bytes=DEFAULT_CAPS[MediaKind.VIDEO],
        width=4096,
        height=4096,
        frames=10**9,
        duration_seconds=30.0,
        renditions=renditions,
    )


def _worst_template(texts: list[str], merge_tags: list[str]) -> Template:
    """A template with every field at its ceiling; the slides' texts as given."""
    subject_chars = LIMIT_CEILINGS["max_subject_chars"]
    return Template(
        mms_id=2**63 - 1,
        account_id="a" * 64,
        name=WIDEST * MAX_NAME,
        subject=WIDEST * subject_chars,
        fallback_sms_text=WIDEST * MAX_FALLBACK_CHARS,
        disable_fallback_sms=True,
        disable_fallback_sms_link=True,
        client_reference=WIDEST * MAX_CLIENT_REFERENCE,
        status=TemplateStatus.ENCODING,  # the sweeper's deadline attributes too
        slides=[
            TemplateSlide(text=text, duration=30, media=[_media(k) for k in MEDIA_PER_SLIDE])
            for text in texts
        ],
        merge_tags=merge_tags,
        size_bytes=2**63 - 1,
        failure_code="E003",
        single_send_id=2**63 - 1,
    )


def _wide_texts() -> list[str]:
    return [WIDEST * LIMIT_CEILINGS["max_text_chars"]] * LIMIT_CEILINGS["max_slides"]


def _tag_texts() -> list[tuple[str, list[str]]]:
    """Texts made of distinct merge tags only: each is stored twice (text and list)."""
    chars = LIMIT_CEILINGS["max_text_chars"]
    texts: list[tuple[str, list[str]]] = []
    for slide in range(LIMIT_CEILINGS["max_slides"]):
        names = [f"s{slide}t{i}" for i in range(chars)]
        text = "".join("{$" + n + "}" for n in names)[:chars]
        kept = [m.group(1) for m in MERGE_TAG.finditer(text)]
        texts.append((text, kept))
    return texts


def test_the_largest_template_item_is_bounded_below_dynamodbs_400_kb() -> None:
    # Given every account limit at its ceiling and every stored field at its limit
    template = _worst_template(_wide_texts(), merge_tags=[])

    # When its item is built, Then DynamoDB counts well under 400 KB
    size = _item_bytes(template)
    print(f"worst template item: {size} bytes")  # the figure, with -s
    assert size < MAX_ITEM_BYTES, size
    assert TemplateStore(table="t").fits(template)


def test_texts_of_merge_tags_cost_less_than_wide_texts() -> None:
    # Merge tag names are kept in a list besides the texts: ASCII, so still cheaper
    pairs = _tag_texts()
    tags = [name for _, names in pairs for name in names]
    template = _worst_template([text for text, _ in pairs], merge_tags=tags)

    assert _item_bytes(template) < _item_bytes(_worst_template(_wide_texts(), merge_tags=[]))


def test_every_limit_has_a_ceiling_that_admin_input_is_checked_against() -> None:
    # Every numeric limit of an account has a ceiling (a new one cannot be forgotten)
    names = {f.name for f in fields(Limits)} - {"max_bytes"}
    assert names == set(LIMIT_CEILINGS)
    assert set(DEFAULT_CAPS) == set(MediaKind)
    # The ceilings are accepted, the defaults are within them
    check_limits(records.load(Limits, LIMIT_CEILINGS))
    check_limits(Limits())


@pytest.mark.parametrize(
    "change",
    [
        {"max_slides": LIMIT_CEILINGS["max_slides"] + 1},
        {"max_text_chars": 1_000_000},
        {"max_subject_chars": 0},
        {"video_budget_bytes": 2**40},
        {"max_media_seconds": 3600},
        {"max_bytes": {**DEFAULT_CAPS, MediaKind.VIDEO: DEFAULT_CAPS[MediaKind.VIDEO] + 1}},
    ],
)
def test_a_limit_over_its_ceiling_is_refused_before_it_is_stored(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="a whole number from 1 to"):
        check_limits(Limits(**change))


def _save(url: str) -> SaveRequest:
    return SaveRequest(
        name="n",
        subject="s",
        slides=[SlideSpec(number=1, media=[MediaRef(kind=MediaKind.VIDEO, url=url)])],
    )


def test_a_media_url_over_its_limit_is_e353_for_a_video() -> None:
    # Given a video URL one character over the limit (and one at it)
    at_limit = "https://media.example.com/" + "v" * (MAX_MEDIA_URL - 30) + ".mp4"
    assert len(at_limit) == MAX_MEDIA_URL
    over = at_limit[:-4] + "v.mp4"

    # Then the one at the limit passes the rules, the longer one is refused as not copied
    assert validate_save(_save(at_limit), Limits()).slides[0].media[0].url == at_limit
    with pytest.raises(ApiError) as refused:
        validate_save(_save(over), Limits())
    assert refused.value.code == "E353"
    assert "slide 1" in refused.value.info
    assert f"longer than {MAX_MEDIA_URL} characters" in refused.value.info


def test_a_long_image_url_is_refused_at_the_api_without_a_fetch(client: Client) -> None:
    url = "https://media.invalid/" + "i" * MAX_MEDIA_URL + ".jpg"
    got = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>n</name>"
            f"<message-subject>s</message-subject><slide><image><url>{url}</url></image></slide>"
            "</request>"
        )
    )

    assert got["status"] == "Failure"
    assert got["error-code"] == "E351"
    assert "Could not copy Image file in slide 1." in got["error-info"]
