"""The slide and template rules of saveMMS / sendMMS (docs/actions.md#slides), checked
before anything is fetched or written. The order of the checks decides which
error a request with several faults gets: template-level fields first, then
each slide in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from mmsapi.errors import ApiError
from mmsapi.media.types import KIND_FACTS, OBJECT_KINDS, MediaKind
from mmsapi.models import Limits, MediaRef, SaveRequest
from mmsapi.numbers import ascii_int
from mmsapi.text import MAX_FALLBACK_CHARS, clean_subject

MAX_CLIENT_REFERENCE: Final = 64
MAX_NAME: Final = 255
# A media URL is stored with its template: longer ones are refused like any URL refused
# for its text, E351..E358 (the template item stays far below DynamoDB's 400 KB).
MAX_MEDIA_URL: Final = 1024
DEFAULT_DURATION: Final = 10
DURATION_RANGE: Final = range(1, 31)
YES_NO: Final = {"yes": True, "no": False, "": False}
PICTURE_AND_SOUND: Final = frozenset({MediaKind.IMAGE, MediaKind.AUDIO, MediaKind.VIDEO})


@dataclass
class ValidSlide:
    number: int
    text: str | None
    duration: int
    media: list[MediaRef] = field(default_factory=list)


@dataclass
class ValidSave:
    name: str
    subject: str
    fallback_sms_text: str
    disable_fallback_sms: bool
    disable_fallback_sms_link: bool
    client_reference: str
    slides: list[ValidSlide]


def yes_no(value: str | None) -> bool:
    """'yes'/'no'/'' (any case) or absent; anything else is E652."""
    if value is None:
        return False
    try:
        return YES_NO[value.strip().lower()]
    except KeyError:
        raise ApiError("E652") from None


def client_reference(raw: str | None) -> str:
    """At most 64 characters (docs/actions.md#savemms); longer is E100."""
    reference = raw or ""
    if len(reference) > MAX_CLIENT_REFERENCE:
        raise ApiError("E100", detail="client-reference is longer than 64 characters")
    return reference


def _subject_and_fallback(req: SaveRequest, limits: Limits, fallback_disabled: bool) -> str:
    fallback = (req.fallback_sms_text or "").strip()
    if len(fallback) > MAX_FALLBACK_CHARS:  # one SMS with its link (text.py)
        raise ApiError("E100", detail=f"fallback-sms-text is over {MAX_FALLBACK_CHARS} characters")
    if req.subject:
        subject = clean_subject(req.subject, limits.max_subject_chars)
        if not subject and not fallback:
            raise ApiError("E314", detail="nothing left after removing unsupported characters")
        return subject
    if not fallback:
        # With fallback disabled there is nothing to fall back on: the subject is the requirement.
        raise ApiError("E314" if fallback_disabled else "E622")
    return ""


def _slide(
    spec_number: int, text: str | None, duration: str | None, media: list[MediaRef], limits: Limits
) -> ValidSlide:
    kept: dict[MediaKind, MediaRef] = {}
    for ref in media:
        kept.setdefault(ref.kind, ref)  # same kind twice: the first is used (001)
    kinds = set(kept)
    has_text = bool(text and text.strip())
    if not kinds and not has_text:
        raise ApiError("E313", x=spec_number)
    objects = kinds & OBJECT_KINDS
    if len(objects) > 1:
        raise ApiError("E223")
    if objects and kinds & PICTURE_AND_SOUND:
        raise ApiError("E224")
    if {MediaKind.AUDIO, MediaKind.VIDEO} <= kinds:
        raise ApiError("E226")
    if {MediaKind.IMAGE, MediaKind.VIDEO} <= kinds:
        raise ApiError("E227")
    for ref in kept.values():
        if len(ref.url.strip()) > MAX_MEDIA_URL:
            detail = f"the URL is longer than {MAX_MEDIA_URL} characters"
            raise ApiError(KIND_FACTS[ref.kind].not_copied, x=spec_number, detail=detail)
    if text is not None and len(text) > limits.max_text_chars:
        raise ApiError("E228", x=limits.max_text_chars, detail=f"slide {spec_number}")
    return ValidSlide(
        spec_number,
        text if has_text else None,
        _duration(spec_number, duration),
        list(kept.values()),
    )


def _duration(number: int, raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_DURATION
    seconds = ascii_int(raw, DURATION_RANGE.start, DURATION_RANGE.stop - 1)
    if seconds is None:
        raise ApiError("E230", x=number)
    return seconds


def validate_save(req: SaveRequest, limits: Limits) -> ValidSave:
    """Check every rule that needs no network; raise the first ApiError found."""
    name = (req.name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise ApiError("E311")
    disable_fallback = yes_no(req.disable_fallback_sms)
    disable_link = yes_no(req.disable_fallback_sms_link)
    subject = _subject_and_fallback(req, limits, disable_fallback)
    reference = client_reference(req.client_reference)
    if not req.slides:
        raise ApiError("E312")
    if len(req.slides) > limits.max_slides:
        raise ApiError("E225", detail=f"at most {limits.max_slides} slides")
    template_ids = [t for s in req.slides for t in s.template_ids]
    if len(template_ids) > 1:
        raise ApiError("E1131")
    slides = [_slide(s.number, s.text, s.duration, s.media, limits) for s in req.slides]
    if template_ids:
        # No personalised image templates exist in this deployment, so any id is unknown.
        number = next(s.number for s in req.slides if s.template_ids)
        raise ApiError("E1130", x=number)
    return ValidSave(
        name=name,
        subject=subject,
        fallback_sms_text=(req.fallback_sms_text or "").strip(),
        disable_fallback_sms=disable_fallback,
        disable_fallback_sms_link=disable_link,
        client_reference=reference,
        slides=slides,
    )
