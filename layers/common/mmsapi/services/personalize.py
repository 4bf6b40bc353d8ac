"""What one recipient reads: custom text and subject, merge tags filled (API-NOTES §3, §6)."""

from __future__ import annotations

from mmsapi.models import Send, Template
from mmsapi.text import clean_subject, fill_merge_tags

SUBJECT_LIMIT = 80


def subject_for(template: Template, send: Send) -> str:
    """The subject for the air: custom or saved, merged, then cleaned of what carriers
    reject (emoji, symbols outside GSM/Latin-1) and cut to 80 characters."""
    raw = send.custom_subject if send.custom_subject is not None else template.subject
    return clean_subject(fill_merge_tags(raw, send.data), SUBJECT_LIMIT)


def texts_for(template: Template, send: Send) -> list[str | None]:
    """Each slide's text: the custom text for that slide if given, merged."""
    custom = {c.slide: c.value for c in send.custom_texts}
    texts: list[str | None] = []
    for number, slide in enumerate(template.slides, start=1):
        text = custom.get(number, slide.text)
        texts.append(fill_merge_tags(text, send.data) if text is not None else None)
    return texts
