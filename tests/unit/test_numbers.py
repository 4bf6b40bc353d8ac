"""mmsapi.numbers: ASCII decimal numbers within bounds, and canonical phone digits."""

from __future__ import annotations

import base64
import email.parser
import sys
import unicodedata

import pytest

from mmsapi.media.guard import GuardedResponse, NetworkError
from mmsapi.numbers import ascii_digits, ascii_int, phone_digits
from mmsapi.tracking import parse_tracking_id, tracking_id

# Every character Unicode calls a decimal digit, but the ten ASCII ones.
OTHER_DIGITS = [
    chr(c)
    for c in range(sys.maxunicode + 1)
    if unicodedata.category(chr(c)) == "Nd" and not chr(c).isascii()
]


def test_every_other_unicode_digit_is_refused() -> None:
    assert len(OTHER_DIGITS) > 600  # every script's digits, not a sample
    for digit in [*OTHER_DIGITS, "²", "½", "Ⅻ"]:
        assert not ascii_digits(digit)
        assert ascii_int(digit, 0, 9) is None
        assert ascii_int("1" + digit, 0, 99) is None
        assert phone_digits("1404479000" + digit) is None


@pytest.mark.parametrize(
    ("raw", "low", "high", "expected"),
    [
        ("5", 1, 30, 5),
        ("0030", 1, 30, 30),
        ("31", 1, 30, None),
        ("0", 1, 30, None),
        ("", 1, 30, None),
        (None, 1, 30, None),
        (" 5", 1, 30, None),
        ("+5", 1, 30, None),
        ("-5", -9, 30, None),
        ("5_0", 1, 100, None),
        ("9" * 5000, 1, 2**63 - 1, None),
        ("0" * 5000 + "7", 1, 30, 7),
        (str(2**63 - 1), 1, 2**63 - 1, 2**63 - 1),
        (str(2**63), 1, 2**63 - 1, None),
    ],
)
def test_ascii_int(raw: str | None, low: int, high: int, expected: int | None) -> None:
    assert ascii_int(raw, low, high) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("14044790000", "14044790000"),
        ("+1 (404) 479-0000", "14044790000"),
        ("0044 7400 123456", "447400123456"),
        ("  +1.404.479.0000 ", "14044790000"),
        ("٠١٤٠٤٤٧٩٠٠٠٠", None),
        ("+", None),
        ("", None),
        (None, None),
        ("1404479000x", None),
    ],
)
def test_phone_digits(raw: str | None, expected: str | None) -> None:
    assert phone_digits(raw) == expected


def test_tracking_id_of_a_huge_or_foreign_number_is_none() -> None:
    assert parse_tracking_id(tracking_id(42)) == 42
    for number in ["9" * 5000, "٣", "²", ""]:
        value = base64.b64encode(f"MMS_{number}".encode()).decode()
        assert parse_tracking_id(value) is None


def response_with(content_length: str) -> GuardedResponse:
    # Only the headers matter to content_length.
    response = GuardedResponse.__new__(GuardedResponse)
    response.headers = email.parser.Parser().parsestr(f"Content-Length: {content_length}\n\n")  # type: ignore[assignment]
    return response


@pytest.mark.parametrize("value", ["9" * 5000, "٣", "²", "12a", str(2**63)])
def test_garbled_content_length_is_a_network_error(value: str) -> None:
    with pytest.raises(NetworkError, match="invalid Content-Length"):
        _ = response_with(value).content_length


def test_content_length() -> None:
    assert response_with(" 1234 ").content_length == 1234
