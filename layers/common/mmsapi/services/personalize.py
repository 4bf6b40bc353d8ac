"""What one recipient reads: custom text and subject, merge tags filled (docs/merge-tags.md),
and the size limits of what a send carries, checked before it is accepted."""

from __future__ import annotations

from mmsapi.errors import ApiError
from mmsapi.models import Send, Template
from mmsapi.text import (
    MAX_DATA_ENTRIES,
    MAX_DATA_NAME_CHARS,
    MAX_DATA_VALUE_CHARS,
    MAX_FALLBACK_CHARS,
    MAX_SUBJECT_SOURCE_CHARS,
    clean_subject,
    fill_merge_tags,
    filled_length,
)

SUBJECT_LIMIT = 80


def subject_for(template: Template, send: Send) -> str:
    """The subject for the air: custom or saved, merged, then cleaned of what carriers
    reject (emoji, symbols outside GSM/Latin-1) and cut to 80 characters."""
    raw = send.custom_subject if send.custom_subject is not None else template.subject
    return clean_subject(fill_merge_tags(raw, send.data, MAX_SUBJECT_SOURCE_CHARS), SUBJECT_LIMIT)


def texts_for(template: Template, send: Send) -> list[str | None]:
    """Each slide's text: the custom text for that slide if given, merged."""
    custom = {c.slide: c.value for c in send.custom_texts}
    texts: list[str | None] = []
    for number, slide in enumerate(template.slides, start=1):
        text = custom.get(number, slide.text)
        texts.append(fill_merge_tags(text, send.data) if text is not None else None)
    return texts


def fallback_text_for(send: Send) -> str:
    """The fallback SMS text, merged: within MAX_FALLBACK_CHARS, as check_sizes ensured."""
    return fill_merge_tags(send.fallback_sms_text, send.data, MAX_FALLBACK_CHARS)


def check_sizes(template: Template, send: Send, max_text_chars: int) -> None:
    """Every documented size limit of a send (docs in text.py), before it is accepted.

    Filled lengths are computed from the tags, never built. The documents give codes
    for the subject (E314) and the text (E228); the other fields take E100 with a
    detail, as client-reference over 64 characters does (docs/errors.md).
    """
    if len(send.data) > MAX_DATA_ENTRIES:
        raise ApiError("E100", detail=f"data holds more than {MAX_DATA_ENTRIES} values")
    for name, value in send.data.items():
        if len(name) > MAX_DATA_NAME_CHARS or len(value) > MAX_DATA_VALUE_CHARS:
            raise ApiError(
                "E100",
                detail=f"a data name is over {MAX_DATA_NAME_CHARS} or its value over "
                f"{MAX_DATA_VALUE_CHARS} characters",
            )
    subject = send.custom_subject if send.custom_subject is not None else template.subject
    if len(subject) > MAX_SUBJECT_SOURCE_CHARS:
        raise ApiError(
            "E314", detail=f"custom-subject is over {MAX_SUBJECT_SOURCE_CHARS} characters"
        )
    if filled_length(subject, send.data) > MAX_SUBJECT_SOURCE_CHARS:
        raise ApiError(
            "E314", detail=f"the filled subject is over {MAX_SUBJECT_SOURCE_CHARS} characters"
        )
    if len(send.fallback_sms_text) > MAX_FALLBACK_CHARS:
        raise ApiError("E100", detail=f"fallback-sms-text is over {MAX_FALLBACK_CHARS} characters")
    if filled_length(send.fallback_sms_text, send.data) > MAX_FALLBACK_CHARS:
        raise ApiError(
            "E100", detail=f"the filled fallback-sms-text is over {MAX_FALLBACK_CHARS} characters"
        )
    if send.ddm is not None and (
        len(send.ddm.text) > max_text_chars or len(send.ddm.subject) > MAX_SUBJECT_SOURCE_CHARS
    ):
        raise ApiError("E100", detail="ddm-message-text or ddm-message-subject is too long")
    custom = {c.slide: c.value for c in send.custom_texts}
    for number, slide in enumerate(template.slides, start=1):
        text = custom.get(number, slide.text)
        if text is not None and filled_length(text, send.data) > max_text_chars:
            raise ApiError("E228", x=max_text_chars, detail=f"slide {number} once filled")
