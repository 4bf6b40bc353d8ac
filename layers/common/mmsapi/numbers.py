"""Numbers in requests: ASCII decimal digits only, bounded before they are converted.

`str.isdigit()` is true for '²', Arabic-Indic and full-width digits, and `int()`
accepts some of them and raises on others (and on more than 4,300 digits): so a
number the API takes is `[0-9]+` and its length is checked before `int()` runs.
"""

from __future__ import annotations

import re
from typing import Final

# re's [0-9] is the ten ASCII digits only (\d would match every Unicode digit).
_DIGITS: Final = re.compile(r"[0-9]+")
_SEPARATORS: Final = str.maketrans("", "", " -().")


def ascii_digits(raw: str) -> bool:
    """True when `raw` is one or more ASCII decimal digits and nothing else."""
    return _DIGITS.fullmatch(raw) is not None


def ascii_int(raw: str | None, low: int, high: int) -> int | None:
    """The value of `raw` if it is an ASCII decimal number in [low, high], else None."""
    if raw is None or not ascii_digits(raw):
        return None
    # Leading zeros do not count; the length cap keeps int() cheap (and under its limit).
    significant = raw.lstrip("0") or "0"
    if len(significant) > len(str(high)):
        return None
    value = int(significant)
    return value if low <= value <= high else None


def phone_digits(raw: str | None) -> str | None:
    """The canonical digits of a phone number as written (country code first, no '+'),
    or None if anything but ASCII digits is left.

    Spaces, '-', '(', ')' and '.' are dropped, then one leading '+' or '00'. Every check
    (validity, blocked numbers, the carrier) sees this one form.
    """
    digits = (raw or "").strip().translate(_SEPARATORS)
    digits = digits.removeprefix("+")
    if digits.startswith("00"):
        digits = digits[2:]
    return digits if ascii_digits(digits) else None
