"""How a word a phone sends is compared with an account's keywords (STOP, inbox words).

Phones and keyboards dress words up: full-width letters (ＳＴＯＰ), zero-width spaces and
byte-order marks pasted in, emoji and punctuation around them (🛑STOP, "Stop!", STOP❗).
A word and a keyword are both brought to one form: NFKC, without format characters
(Unicode category Cf), without the punctuation and symbols around it (categories P*, S*,
and emoji variation selectors; not U+FFFD, an unreadable byte), case-folded. Punctuation
inside a word stays (S.T.O.P is not STOP: a keyword must be asked for, not guessed). A
first "word" that is only symbols (🛑 STOP) is passed over.
"""

from __future__ import annotations

import unicodedata


def _visible(text: str) -> str:
    """NFKC, without format characters (zero-width spaces and joiners, BOM)."""
    normal = unicodedata.normalize("NFKC", text)
    return "".join(c for c in normal if unicodedata.category(c) != "Cf")


def _edge(char: str) -> bool:
    if char == "\ufffd":  # a byte that could not be read: not known to be punctuation
        return False
    return unicodedata.category(char)[0] in "PS" or "\ufe00" <= char <= "\ufe0f"


def keyword_form(word: str) -> str:
    """The form words and keywords are compared in ('' when nothing of a word is left)."""
    text = "".join(
        c for c in unicodedata.normalize("NFKC", word) if unicodedata.category(c) != "Cf"
    )
    start, end = 0, len(text)
    while start < end and _edge(text[start]):
        start += 1
    while end > start and _edge(text[end - 1]):
        end -= 1
    return text[start:end].casefold()


def first_word(text: str) -> str:
    """The first word of a text in keyword form (`STOP!` is `stop`); '' for none."""
    cleaned = "".join(
        c for c in unicodedata.normalize("NFKC", text) if unicodedata.category(c) != "Cf"
    )
    for word in cleaned.split():
        form = keyword_form(word)
        if form:
            return form
    return ""
