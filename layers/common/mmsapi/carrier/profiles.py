"""The handset profile table (docs/handset-adaptation.md): what each class of handset takes.

Sizes are what carriers let through on the air, not what phones could store:
US carriers pass about 1 MB to iPhones and recent Android phones, 600 KB to
older smartphones, 300 KB to feature phones (OMA MMS "Video Basic"), 100 KB to
the oldest ("Image Rich"). Unknown handsets get GENERIC, sized like a feature
phone: a message that fits it is delivered nearly everywhere.

Handsets are recognised by their UAProf URL (delivery reports carry it) or
their User-Agent, with one ordered list of patterns: the first match wins.
"""

from __future__ import annotations

import re
from typing import Final

from mmsapi.carrier.message import HandsetProfile, OsFamily
from mmsapi.media.types import MediaKind

_KB: Final = 1024

GENERIC_ID: Final = "generic"

_MP3_FIRST: Final = ("audio/mpeg", "audio/amr")
_AMR_FIRST: Final = ("audio/amr", "audio/mpeg")
_MP4_FIRST: Final = ("video/mp4", "video/3gpp")


def _profile(
    profile_id: str,
    name: str,
    os: OsFamily,
    kb: int,
    max_image_dimension: int,
    audio: tuple[str, ...],
    video: tuple[str, ...],
) -> HandsetProfile:
    return HandsetProfile(
        profile_id=profile_id,
        name=name,
        os=os,
        max_message_bytes=kb * _KB,
        max_image_dimension=max_image_dimension,
        audio_types=list(audio),
        video_types=list(video),
    )


_OTHER, _IOS, _ANDROID = OsFamily.OTHER, OsFamily.IOS, OsFamily.ANDROID

# id -> profile. Audio and video types are in order of preference.
PROFILES: Final[dict[str, HandsetProfile]] = {
    p.profile_id: p
    for p in (
        _profile(GENERIC_ID, "Unknown handset", _OTHER, 300, 640, _AMR_FIRST, ("video/3gpp",)),
        _profile("iphone", "iPhone", _IOS, 1024, 1600, _MP3_FIRST, _MP4_FIRST),
        _profile("android", "Android phone", _ANDROID, 1024, 1280, _MP3_FIRST, _MP4_FIRST),
        _profile("android_tablet", "Android tablet", _ANDROID, 1024, 1600, _MP3_FIRST, _MP4_FIRST),
        _profile(
            "android_legacy", "Android 7 or older", _ANDROID, 600, 1024, _MP3_FIRST, _MP4_FIRST
        ),
        _profile("windows_phone", "Windows Phone", _OTHER, 600, 1024, _MP3_FIRST, _MP4_FIRST),
        _profile("blackberry", "BlackBerry", _OTHER, 600, 1024, _MP3_FIRST, _MP4_FIRST),
        _profile("kaios", "KaiOS phone", _OTHER, 600, 640, _MP3_FIRST, _MP4_FIRST),
        # H.263 QCIF 3GP and AMR only: what every MMS feature phone plays.
        _profile(
            "feature_phone", "Feature phone", _OTHER, 300, 320, ("audio/amr",), ("video/3gpp",)
        ),
        # No video at all: a video template does not fit and goes as SMS with a link.
        _profile("basic_phone", "Basic MMS phone", _OTHER, 100, 240, ("audio/amr",), ()),
    )
}

GENERIC: Final = PROFILES[GENERIC_ID]

# Objects sent as binary parts, by OS; the others go as links in the slide's text.
BINARY_OBJECTS: Final[dict[OsFamily, frozenset[MediaKind]]] = {
    OsFamily.IOS: frozenset({MediaKind.VCARD, MediaKind.ICAL, MediaKind.PDF}),
    OsFamily.ANDROID: frozenset({MediaKind.VCARD}),
    OsFamily.OTHER: frozenset({MediaKind.VCARD}),
}

# (pattern, profile id), first match wins, searched in "<user agent> <uaprof url>" lower-cased.
# Specific families come before the brands that also make them (a Nokia KaiOS phone,
# a Samsung tablet, an old Samsung feature phone).
_MATCHERS: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern), profile_id)
    for pattern, profile_id in (
        (r"iphone|ipad|ipod|apple\.com", "iphone"),
        (r"kaios", "kaios"),
        (r"windows ?phone|iemobile|lumia", "windows_phone"),
        (r"blackberry|\bbb10\b|rim\.net", "blackberry"),
        (
            r"\bsm-[tx]\d|\bgt-p\d|\bgt-n[58]\d|tablet|nexus (?:7|9|10)\b|pixel c\b",
            "android_tablet",
        ),
        (r"android [1-7](?:[.;) ]|$)", "android_legacy"),
        (r"android", "android"),
        (r"up\.browser/[1-5]\.|midp-1\.", "basic_phone"),
        (
            r"\b(?:sgh|sch|sph)-[a-z]?\d|\blg-?(?:vx|vn|gs|gd|kp|gt|gu)\d|nokia|sonyericsson"
            r"|\bsie-|\bmot-|jiophone|series ?40|midp|up\.browser|obigo|brew",
            "feature_phone",
        ),
        (
            r"samsung|google|pixel|motorola|\blge?\b|\blg-|htc|sony|xiaomi|redmi|oneplus"
            r"|huawei|honor|oppo|vivo|realme|zte|tcl|asus|lenovo",
            "android",
        ),
    )
)


def get_profile(profile_id: str | None) -> HandsetProfile:
    """The profile of that id; GENERIC for an unknown or missing id (a removed class)."""
    return PROFILES.get(profile_id or "", GENERIC)


def profile_for_uaprof(ua_prof_url: str | None, user_agent: str | None = None) -> HandsetProfile:
    """The profile of the handset that a UAProf URL and/or User-Agent describe; GENERIC
    when neither is known. The User-Agent comes first: it names the OS version."""
    subject = f"{user_agent or ''} {ua_prof_url or ''}".lower()
    if not subject.strip():
        return GENERIC
    for pattern, profile_id in _MATCHERS:
        if pattern.search(subject):
            return PROFILES[profile_id]
    return GENERIC
