"""Subjects for the air and merge tags."""

from __future__ import annotations

from mmsapi.text import clean_subject, fill_merge_tags, merge_tags


def test_subject_keeps_latin1_and_gsm_and_drops_emoji() -> None:
    assert clean_subject("Café € ΔΩ 🎉 sale", 80) == "Café € ΔΩ sale"
    assert clean_subject("line\nbreak", 80) == "line break"
    assert clean_subject("abcdef", 3) == "abc"


def test_merge_tags_are_listed_once_in_order_case_insensitively() -> None:
    assert merge_tags("Hi {$FirstName|friend}", None, "{$birthday|today} {$firstname}") == [
        "firstname",
        "birthday",
    ]


def test_merge_tags_are_filled_with_data_or_default_or_nothing() -> None:
    text = "Hello {$firstname|customer}, {$birthday|today}! {$pin}"
    assert fill_merge_tags(text, {"FIRSTNAME": "Bill"}) == "Hello Bill, today! "
