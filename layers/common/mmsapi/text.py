"""Text facts: what a subject may carry on the air, and merge tags."""

from __future__ import annotations

import re
from typing import Final

# GSM 03.38 letters outside Latin-1; everything else a carrier takes is Latin-1 printable.
_GSM_EXTRA: Final = frozenset("ΔΦΓΛΩΠΨΣΘΞ€")

MERGE_TAG: Final = re.compile(r"\{\$([A-Za-z0-9_.-]+)(?:\|([^{}]*))?\}")

# Documented size limits of what a send carries (checked at the API, services/send.py):
# together they keep a send's DynamoDB item far below 400 KB (tests/integration/
# test_merge_limits.py computes the bound), and a filled text can never outgrow them.
MAX_DATA_ENTRIES: Final = 20  # merge values of one send (E100)
MAX_DATA_NAME_CHARS: Final = 64  # a merge tag name (E100)
MAX_DATA_VALUE_CHARS: Final = 1000  # one merge value (E100)
MAX_SUBJECT_SOURCE_CHARS: Final = 500  # custom-subject, before and after filling (E314)
MAX_FALLBACK_CHARS: Final = 1400  # fallback-sms-text: plus its link, within one 1600-char SMS
# What filling may build at most, whatever was stored: a slide's filled text is refused
# at the API beyond the account's text limit (E228, 5,000 by default).
MAX_FILLED_CHARS: Final = 20_000


def _carried(ch: str) -> bool:
    code = ord(ch)
    return 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF or ch in _GSM_EXTRA


def clean_subject(subject: str, limit: int) -> str:
    """Strip what carriers reject (emoji, symbols outside GSM/Latin-1), cut to `limit`.

    Merge tags are kept whole: they are filled at send time and cleaned again then.
    """
    carried = "".join(ch if _carried(ch) else (" " if ch in "\t\r\n" else "") for ch in subject)
    collapsed = " ".join(carried.split())
    cut = limit
    for match in MERGE_TAG.finditer(collapsed):
        if match.start() >= limit:
            break
        if match.end() > limit:  # the limit falls inside this tag: cut before it
            cut = match.start()
            break
    return collapsed[:cut].rstrip()


def merge_tags(*texts: str | None) -> list[str]:
    """The distinct merge tag names (lower case) in order of first appearance."""
    seen: dict[str, None] = {}
    for text in texts:
        for match in MERGE_TAG.finditer(text or ""):
            seen.setdefault(match.group(1).lower(), None)
    return list(seen)


def filled_length(text: str, data: dict[str, str]) -> int:
    """The length of fill_merge_tags(text, data), computed without building it."""
    lowered = {k.lower(): v for k, v in data.items()}
    length = len(text)
    for match in MERGE_TAG.finditer(text):
        fill = lowered.get(match.group(1).lower(), match.group(2) or "")
        length += len(fill) - len(match.group(0))
    return length


def fill_merge_tags(text: str, data: dict[str, str], limit: int = MAX_FILLED_CHARS) -> str:
    """Replace `{$name|default}` with data[name] (names case-insensitive), else the default.

    At most `limit` characters come back: filling stops there, so 2,000 tags of a long
    value never build more than the limit (the API refuses such sends; this bounds the
    ones stored before it did).
    """
    lowered = {k.lower(): v for k, v in data.items()}
    parts: list[str] = []
    size, pos = 0, 0
    for match in MERGE_TAG.finditer(text):
        for piece in (
            text[pos : match.start()],
            lowered.get(match.group(1).lower(), match.group(2) or ""),
        ):
            parts.append(piece[: limit - size])
            size += len(parts[-1])
        pos = match.end()
        if size >= limit:
            return "".join(parts)
    parts.append(text[pos:][: limit - size])
    return "".join(parts)
