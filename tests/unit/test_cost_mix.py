"""The cost benchmark's mix is issue 11's: 10 handset profiles, 5 templates with image,
audio and video, one send in ten as fallback SMS, and (with Device Discovery on each
recipient's first send) 3 postbacks a send. The run prints and checks what it measured;
these check the mix is built to give it."""

from __future__ import annotations

from collections import Counter

from benchmarks.cost import HANDSETS, ROUNDS, TEMPLATES, Result, _kinds, _send_postbacks, refuses


def test_five_templates_all_with_an_image_and_audio_and_video_among_them() -> None:
    kinds = [_kinds(index) for index in range(TEMPLATES)]
    assert TEMPLATES == 5
    assert all("image" in k for k in kinds)
    assert Counter(kind for k in kinds for kind in k) == {"image": 5, "audio": 2, "video": 3}


def test_ten_profiles_and_one_recipient_in_ten_gets_video_on_a_basic_phone() -> None:
    assert len({profile for profile, _ in HANDSETS}) == 10
    recipients = range(500)
    basic = [i for i in recipients if _profile(i) == "basic_phone"]
    # Recipient i always gets template i % TEMPLATES (benchmarks/cost.run).
    assert all("video" in _kinds(i % TEMPLATES) for i in basic)
    assert len(basic) / len(recipients) == 0.1
    # The refusers are basic phones too: the fallback share stays one in ten.
    assert {i for i in recipients if refuses(i)} <= set(basic)
    assert sum(refuses(i) for i in recipients) == 10


def _profile(recipient: int) -> str:
    return HANDSETS[recipient % len(HANDSETS)][0]


def test_two_sends_per_recipient_so_half_the_sends_are_first_contacts() -> None:
    assert ROUNDS == 2


def test_postbacks_per_send_leave_out_the_templates_own() -> None:
    result = Result.__new__(Result)
    result.codes = Counter({"N003": 5, "N501": 1, "N502": 1, "N101": 2, "N102": 2})
    assert _send_postbacks(result) == 6
