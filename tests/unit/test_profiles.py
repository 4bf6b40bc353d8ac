"""The handset profile table (carrier/profiles.py): matching UAProf URLs and User-Agents."""

from __future__ import annotations

import pytest

from mmsapi.carrier.message import OsFamily
from mmsapi.carrier.profiles import (
    BINARY_OBJECTS,
    GENERIC,
    GENERIC_ID,
    PROFILES,
    get_profile,
    profile_for_uaprof,
)
from mmsapi.media.types import MediaKind

KB = 1024

ANDROID_14 = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"
)
ANDROID_4 = "Mozilla/5.0 (Linux; U; Android 4.4.2; en-us; SCH-I545 Build/KOT49H) Mobile"
KAIOS = "Mozilla/5.0 (Mobile; Nokia_8110_4G; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS/2.5"


@pytest.mark.parametrize(
    ("ua_prof", "user_agent", "expected"),
    [
        ("http://www.apple.com/mms/uaprof.rdf", None, "iphone"),
        ("http://www.google.com/oha/rdf/ua-profile-kila.xml", None, "android"),
        ("http://wap.samsungmobile.com/uaprof/SM-G991B.xml", None, "android"),
        ("http://wap.samsungmobile.com/uaprof/SM-T830.xml", None, "android_tablet"),
        ("http://wap.samsungmobile.com/uaprof/SGH-A877.xml", None, "feature_phone"),
        ("http://nds1.nds.nokia.com/uaprof/N6300r100.xml", None, "feature_phone"),
        ("http://www.blackberry.net/go/mobile/profiles/uaprof/9700/5.0.0.rdf", None, "blackberry"),
        (None, ANDROID_14, "android"),
        (None, ANDROID_4, "android_legacy"),
        # The User-Agent's OS beats the brand in the UAProf URL.
        ("http://nds1.nds.nokia.com/uaprof/N8110_4Gr100.xml", KAIOS, "kaios"),
        (None, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X)", "iphone"),
        (
            None,
            "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950)",
            "windows_phone",
        ),
        (None, "SAMSUNG-SGH-A867/A867UCHJ3 SHP/VPP/R5 NetFront/35 SMM-MMS/1.2.0", "feature_phone"),
    ],
)
def test_known_handsets_get_their_class(
    ua_prof: str | None, user_agent: str | None, expected: str
) -> None:
    # Given what a delivery report or a fetch tells about a handset
    # When its profile is looked up
    profile = profile_for_uaprof(ua_prof, user_agent)
    # Then it is the profile of that class of handset
    assert profile.profile_id == expected


@pytest.mark.parametrize(
    ("ua_prof", "user_agent"),
    [(None, None), ("", ""), ("http://uaprof.example.net/handset.xml", "curl/8.0")],
)
def test_unknown_handsets_get_the_generic_profile(
    ua_prof: str | None, user_agent: str | None
) -> None:
    # Given nothing recognisable
    # When its profile is looked up
    # Then it is the generic one
    assert profile_for_uaprof(ua_prof, user_agent) is GENERIC


def test_profiles_are_found_by_id_and_unknown_ids_are_generic() -> None:
    # Given the table
    # When profiles are asked for by id, known or not (a class removed since it was cached)
    # Then known ids give their profile and unknown ones the generic profile
    assert get_profile("iphone").os is OsFamily.IOS
    assert get_profile("no-such-class") is GENERIC
    assert get_profile(None) is GENERIC


def test_the_generic_profile_is_sized_for_anything() -> None:
    # Given the generic profile
    # Then it takes what every MMS handset takes: 300 KB, 640 px, AMR first, 3GP video
    assert GENERIC.profile_id == GENERIC_ID
    assert GENERIC.max_message_bytes == 300 * KB
    assert GENERIC.max_image_dimension == 640
    assert GENERIC.audio_types == ["audio/amr", "audio/mpeg"]
    assert GENERIC.video_types == ["video/3gpp"]
    assert GENERIC.os is OsFamily.OTHER


def test_the_table_is_sane() -> None:
    # Given every profile
    # Then ids match their keys, limits are carrier-sane and types are what we make
    assert 8 <= len(PROFILES) <= 12
    for profile_id, profile in PROFILES.items():
        assert profile.profile_id == profile_id
        assert 100 * KB <= profile.max_message_bytes <= 1024 * KB
        assert 160 <= profile.max_image_dimension <= 1600
        assert set(profile.audio_types) <= {"audio/amr", "audio/mpeg"}
        assert set(profile.video_types) <= {"video/mp4", "video/3gpp"}
        assert profile.audio_types, "every MMS handset plays AMR at least"


def test_vcard_is_binary_everywhere_and_pdf_only_on_ios() -> None:
    # Given the object table (docs/handset-adaptation.md#handset-classes)
    # Then vCard goes as a binary part to every OS, iCal and PDF only to iOS
    for os in OsFamily:
        assert MediaKind.VCARD in BINARY_OBJECTS[os]
        assert MediaKind.PASSBOOK not in BINARY_OBJECTS[os]
    assert {MediaKind.ICAL, MediaKind.PDF} <= BINARY_OBJECTS[OsFamily.IOS]
    assert not {MediaKind.ICAL, MediaKind.PDF} & BINARY_OBJECTS[OsFamily.ANDROID]
    assert not {MediaKind.ICAL, MediaKind.PDF} & BINARY_OBJECTS[OsFamily.OTHER]
