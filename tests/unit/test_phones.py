"""An MO's sender in the form sends name numbers (mmsapi/phones.py)."""

from __future__ import annotations

import pytest

from mmsapi.phones import sender_digits


@pytest.mark.parametrize(
    ("digits", "region", "international", "expected"),
    [
        ("14082257140", "US", False, "14082257140"),  # MM7's form: international already
        ("4082257140", "US", False, "14082257140"),  # national, read in the shortcode's country
        ("14082257140", "US", True, "14082257140"),  # written +1 408-225-7140 or 001...
        ("07911123456", "GB", False, "447911123456"),  # a UK mobile, national (trunk 0)
        ("447700900123", "US", False, "447700900123"),  # valid as it stands: kept
        ("4082257140", "US", True, "4082257140"),  # written 00408...: as written (+40...)
        ("12345", "US", False, "12345"),  # neither reading valid: kept
    ],
)
def test_a_sender_is_read_as_sends_name_it(
    digits: str, region: str, international: bool, expected: str
) -> None:
    assert sender_digits(digits, region, international) == expected
