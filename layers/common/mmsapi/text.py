"""Text facts: what a subject may carry on the air, and merge tags."""

from __future__ import annotations

import re
from typing import Final

# GSM 03.38 letters outside Latin-1; everything else a carrier takes is Latin-1 printable.
_GSM_EXTRA: Final = frozenset("ΔΦΓΛΩΠΨΣΘΞ€")

MERGE_TAG: Final = re.compile(r"\{\$([A-Za-z0-9_.-]+)(?:\|([^{}]*))?\}")


def _carried(ch: str) -> bool:
    code = ord(ch)
    return 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF or ch in _GSM_EXTRA


def clean_subject(subject: str, limit: int) -> str:
    """Strip what carriers reject (emoji, symbols outside GSM/Latin-1), cut to `limit`.

    Merge tags are kept whole: they are filled at send time and cleaned again then.
    """
    carried = "".join(ch if _carried(ch) else (" " if ch in "\t\r\n" else "") for ch in subject)
    return " ".join(carried.split())[:limit].rstrip()


def merge_tags(*texts: str | None) -> list[str]:
    """The distinct merge tag names (lower case) in order of first appearance."""
    seen: dict[str, None] = {}
    for text in texts:
        for match in MERGE_TAG.finditer(text or ""):
            seen.setdefault(match.group(1).lower(), None)
    return list(seen)


def fill_merge_tags(text: str, data: dict[str, str]) -> str:
    """Replace `{$name|default}` with data[name] (names case-insensitive), else the default."""
    lowered = {k.lower(): v for k, v in data.items()}

    def value(match: re.Match[str]) -> str:
        return lowered.get(match.group(1).lower(), match.group(2) or "")

    return MERGE_TAG.sub(value, text)
