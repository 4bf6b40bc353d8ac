"""The slide and template rules of docs/actions.md#slides, one error code at a time."""

from __future__ import annotations

import pytest

from mmsapi import records
from mmsapi.errors import ApiError
from mmsapi.media.types import MediaKind
from mmsapi.models import Limits, MediaRef, SaveRequest, SlideSpec
from mmsapi.rules import validate_save

URL = "http://media.example/x"


def slide(
    n: int = 1,
    text: str | None = "hello",
    duration: str | None = None,
    kinds: tuple[MediaKind, ...] = (),
    template_ids: tuple[str, ...] = (),
) -> SlideSpec:
    return SlideSpec(
        number=n,
        text=text,
        duration=duration,
        media=[MediaRef(kind=k, url=f"{URL}/{k.value}") for k in kinds],
        template_ids=list(template_ids),
    )


def request(**changes: object) -> SaveRequest:
    base: dict[str, object] = {"name": "n", "subject": "s", "slides": [slide()]}
    base.update(changes)
    return records.load(SaveRequest, base)


def code_of(req: SaveRequest, limits: Limits | None = None) -> str:
    with pytest.raises(ApiError) as caught:
        validate_save(req, limits or Limits())
    return caught.value.code


def test_a_valid_request_passes_with_defaults() -> None:
    valid = validate_save(request(), Limits())
    assert valid.slides[0].duration == 10
    assert valid.disable_fallback_sms is False


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"name": None}, "E311"),
        ({"name": "   "}, "E311"),
        ({"name": "x" * 256}, "E311"),
        ({"disable_fallback_sms": "maybe"}, "E652"),
        ({"disable_fallback_sms_link": "1"}, "E652"),
        ({"subject": None, "fallback_sms_text": None}, "E622"),
        ({"subject": None, "fallback_sms_text": None, "disable_fallback_sms": "yes"}, "E314"),
        ({"subject": "😀🎉", "fallback_sms_text": None}, "E314"),
        ({"client_reference": "r" * 65}, "E100"),
        ({"slides": []}, "E312"),
        ({"slides": [slide(i) for i in range(1, 10)]}, "E225"),
        ({"slides": [slide(1, template_ids=("a",)), slide(2, template_ids=("b",))]}, "E1131"),
        ({"slides": [slide(1), slide(2, template_ids=("a",))]}, "E1130"),
        ({"slides": [slide(1), slide(2, text=None)]}, "E313"),
        ({"slides": [slide(kinds=(MediaKind.VCARD, MediaKind.PDF))]}, "E223"),
        ({"slides": [slide(kinds=(MediaKind.IMAGE, MediaKind.PDF))]}, "E224"),
        ({"slides": [slide(kinds=(MediaKind.AUDIO, MediaKind.VIDEO))]}, "E226"),
        ({"slides": [slide(kinds=(MediaKind.IMAGE, MediaKind.VIDEO))]}, "E227"),
        ({"slides": [slide(text="x" * 5001)]}, "E228"),
        ({"slides": [slide(duration="0")]}, "E230"),
        ({"slides": [slide(duration="31")]}, "E230"),
        ({"slides": [slide(duration="2.5")]}, "E230"),
        ({"slides": [slide(duration="ten")]}, "E230"),
    ],
)
def test_each_rule_gives_its_code(changes: dict[str, object], code: str) -> None:
    assert code_of(request(**changes)) == code


def test_slide_number_is_in_the_text() -> None:
    with pytest.raises(ApiError) as caught:
        validate_save(request(slides=[slide(1), slide(2, duration="99")]), Limits())
    assert caught.value.info == "Invalid / bad slide duration in slide 2."


def test_fallback_text_alone_is_enough() -> None:
    valid = validate_save(request(subject=None, fallback_sms_text="see link"), Limits())
    assert valid.subject == ""
    assert valid.fallback_sms_text == "see link"


def test_subject_is_cleaned_and_cut() -> None:
    valid = validate_save(request(subject="Sale 🎉 ends " + "x" * 100), Limits())
    assert valid.subject.startswith("Sale ends ")
    assert len(valid.subject) == 80


def test_image_with_audio_and_text_is_allowed_and_duplicates_keep_the_first() -> None:
    spec = slide(kinds=(MediaKind.IMAGE, MediaKind.AUDIO))
    spec.media.append(MediaRef(kind=MediaKind.IMAGE, url="http://second.example/2.jpg"))
    valid = validate_save(request(slides=[spec]), Limits())
    urls = [m.url for m in valid.slides[0].media]
    assert urls == [f"{URL}/image", f"{URL}/audio"]


def test_slide_limit_is_per_account() -> None:
    nine = request(slides=[slide(i) for i in range(1, 10)])
    assert len(validate_save(nine, Limits(max_slides=9)).slides) == 9
    assert code_of(nine, Limits(max_slides=8)) == "E225"
