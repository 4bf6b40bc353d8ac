"""A saved subject is cut to the account's length without splitting a merge tag."""

from __future__ import annotations

from mmsapi.text import MERGE_TAG, clean_subject


def test_a_cut_through_a_merge_tag_keeps_the_tag_out_whole() -> None:
    # Given a subject whose limit falls inside its merge tag
    subject = "Hello there " + "{$firstname|friend}"
    # When it is cut to 16 characters
    cut = clean_subject(subject, 16)
    # Then the tag is left out whole, not cut through
    assert cut == "Hello there"
    assert "{$" not in cut


def test_a_tag_within_the_limit_is_kept_and_the_text_after_it_is_cut() -> None:
    subject = "Hi {$firstname|friend}, your order is ready"
    cut = clean_subject(subject, 30)
    assert cut == "Hi {$firstname|friend}, your o"
    assert MERGE_TAG.search(cut) is not None


def test_a_subject_without_tags_is_cut_at_the_limit() -> None:
    assert clean_subject("x" * 90, 80) == "x" * 80
    # A tag that starts exactly at the limit is not there to split
    assert clean_subject("a" * 5 + "{$x}", 5) == "aaaaa"
