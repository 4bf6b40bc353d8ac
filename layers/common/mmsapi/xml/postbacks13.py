"""What the Skycore 1.3 edition requires of each postback (docs/legacy-1.3.md).

Legacy-dialect receivers were written against the 1.3 grammars
(schemas/legacy/postback.rng adapts them): a postback of theirs carries every element
that its code's grammar requires. A fact this deployment does not know (a carrier
that sent no handset, a send refused before any carrier took it) is written empty
rather than left out. Names are canonical; xml/dialect.py says how 1.3 spells them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

_SENT: Final = (
    "sent-as",
    "status",
    "mms-id",
    "from",
    "to",
    "tracking-id",
    "operator-id",
    "timestamp",
)
_DELIVERED: Final = (*_SENT, "handset", "aggregator-id")
_FAILED: Final = ("status", "mms-id", "from", "to", "tracking-id", "operator-id", "status-details")
_NOT_DELIVERED: Final = (
    "status",
    "mms-id",
    "from",
    "to",
    "tracking-id",
    "operator-id",
    "timestamp",
    "aggregator-id",
    "status-details",  # the carrier's reason, as in 1.3's E102 example
)
# A fallback SMS's outcome: 1.3's SMS MT N202 grammar (FROM_MASK included: empty, as in
# 1.3's own SMS examples, for this deployment never masks the sender). ORIGIN stays
# MMS_MT, as in 1.3's MMS page's N202 example for exactly this case (docs/legacy-1.3.md).
_SMS: Final = (
    "status",
    "from",
    "from-mask",
    "to",
    "tracking-id",
    "operator-id",
    "timestamp",
    "aggregator-id",
)

# Postback code -> the fields its 1.3 grammar (or, where 1.3 has only an example, its
# example) requires besides ORIGIN and CODE. The DDM codes have the shapes of the MMS
# ones (1.3: "N101/N501 - Message Sent" …). Codes 1.3 does not have require nothing more.
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "N003": ("mms-id",),
    "E002": ("mms-id", "audio-name"),
    "E003": ("mms-id", "video-name"),
    "N101": _SENT,
    "N501": _SENT,
    "N102": _DELIVERED,
    "N502": _DELIVERED,
    "E101": _FAILED,
    "E501": _FAILED,
    "E102": _NOT_DELIVERED,
    "E502": _NOT_DELIVERED,
    # 1.3's "N102 (xHTML)": the fallback SMS was delivered (its example's code is N202).
    "N202": ("sent-as", *_SMS),
    "E202": _SMS,
    # An MMS a phone sent (MO): 1.3's inbox postback (ORIGIN MMS_MO) names these.
    "N401": (
        "from",
        "to",
        "keyword",
        "message-subject",
        "tracking-id",
        "operator-id",
        "timestamp",
        "content",
    ),
    # An SMS a phone sent (SMS MO): N401's fields but SUBJECT and CONTENT, and its TEXT.
    "N402": (
        "from",
        "to",
        "keyword",
        "tracking-id",
        "operator-id",
        "timestamp",
        "message-text",
    ),
}


# Values a code implies, for required fields the current edition leaves out: delivery
# reports of an MMS (N102, and the DDM's N502) and of a fallback SMS (N202).
IMPLIED: Final[dict[str, dict[str, str]]] = {
    "N102": {"sent-as": "MMS"},
    "N502": {"sent-as": "MMS"},
    "N202": {"sent-as": "SMS"},
}


def with_required(code: str, fields: Mapping[str, object]) -> dict[str, object]:
    """`fields` with every field the code's 1.3 grammar requires: the value the code
    implies, else empty, where the fields do not have it."""
    filled: dict[str, object] = dict(fields)
    implied = IMPLIED.get(code, {})
    for name in REQUIRED.get(code, ()):
        if filled.get(name) is None:
            filled[name] = implied.get(name, "")
    return filled
