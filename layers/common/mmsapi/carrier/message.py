"""An MMS ready for the air: its parts and the slide layout the SMIL presents.

Built per recipient and handset by the adaptation step, sent by a carrier adapter.
"""

from __future__ import annotations

from dataclasses import field
from enum import StrEnum

from mmsapi.records import record


class OsFamily(StrEnum):
    IOS = "ios"
    ANDROID = "android"
    OTHER = "other"


@record
class HandsetProfile:
    """What one class of handset takes (docs/handset-adaptation.md#handset-classes)."""

    profile_id: str
    name: str
    os: OsFamily = OsFamily.OTHER
    max_message_bytes: int = 300 * 1024  # on the air: binary parts count size × 1.37 + 814
    max_image_dimension: int = 640  # images go as JPEG, PNG or GIF: every MMS handset shows them
    audio_types: list[str] = field(default_factory=lambda: ["audio/amr", "audio/mpeg"])
    video_types: list[str] = field(default_factory=lambda: ["video/3gpp"])


@record
class MessagePart:
    content_id: str  # without angle brackets, e.g. "slide1-image.jpg"
    content_type: str
    filename: str
    data: bytes


@record
class SlidePlan:
    """One slide of the SMIL presentation; each field is a part's content_id."""

    duration: int = 10
    image: str | None = None
    video: str | None = None
    audio: str | None = None
    text: str | None = None
    objects: list[str] = field(default_factory=list)  # vCard/iCal/PDF/Passbook parts


@record
class OutgoingMessage:
    subject: str
    slides: list[SlidePlan]
    parts: list[MessagePart]

    def air_bytes(self) -> int:
        """Estimated size on the air: each binary part costs size × 1.37 + 814
        (docs/handset-adaptation.md)."""
        return sum(int(len(p.data) * 1.37) + 814 for p in self.parts)
