"""The dialect alias table: one table for reading and writing names (docs/actions.md).

Tag names are case-insensitive; a tag is looked up by its key (lower case, with
'-' and '_' removed), so `api-key`, `api_key`, `API_KEY` and `APIKEY` are one
field. Each canonical (lowercase-hyphen) name lists its legacy spellings; the
first legacy spelling is the one the legacy dialect writes: the name the Skycore
1.3 edition gives it (docs/legacy-1.3.md), where 1.3 names it otherwise than the
uppercase, hyphen-free form of the current name.
"""

from __future__ import annotations

from typing import Final

from mmsapi.models import Dialect

ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "api-key": ("API_KEY",),
    "message-subject": ("SUBJECT",),
    "message-text": ("TEXT",),
    "mms-id": ("MMSID",),
    "fallback-sms-text": ("FALLBACKSMSTEXT",),
    "disable-fallback-sms": ("DISABLEFALLBACKSMS",),
    "disable-fallback-sms-link": ("DISABLEFALLBACKSMSLINK",),
    "client-reference": ("CLIENT_REFERENCE",),
    "custom-text": ("CUSTOMTEXT",),
    "custom-subject": ("CUSTOMSUBJECT",),
    "data": ("DATA",),
    "ddm-force": ("DDMFORCE",),
    "ddm-message-text": ("DDMTEXT",),
    "ddm-message-subject": ("DDMTITLE",),
    "ddm-message-timeout": ("DDMTIMEOUT",),
    # 1.3 calls the carrier SPID (postbacks, old sendMMS); later legacy pages OPERATORID.
    "operator-id": ("SPID", "OPERATORID"),
    "service-id": ("SERVICEID",),
    "tracking-id": ("TRACKINGID",),
    "template-id": ("TEMPLATE-ID",),
    "vcard": ("VCARD", "CONTACT"),
    "ical": ("ICAL", "CALENDAR"),
    # getMMSTemplates: read as the legacy answer writes them.
    "start-date": ("STARTDATE",),
    "page-number": ("PAGENUMBER",),
    "items-per-page": ("ITEMSPERPAGE",),
    # The carrier's (or SMS aggregator's) id of the message, on 1.3 delivery postbacks.
    "aggregator-id": ("AGGREGATORID",),
    # 1.3's alphanumeric sender mask, on its SMS postbacks (N202/E202 here).
    "from-mask": ("FROM_MASK",),
}

# Fields the 1.3 edition has and the current one dropped: written in the legacy dialect only.
LEGACY_ONLY: Final = frozenset({"aggregator-id", "from-mask"})


def key(tag: str) -> str:
    """The case- and punctuation-free key under which a tag is looked up."""
    return tag.lower().replace("-", "").replace("_", "")


_CANONICAL: Final[dict[str, str]] = {
    key(alias): canonical
    for canonical, aliases in ALIASES.items()
    for alias in (canonical, *aliases)
}


def canonical(tag: str) -> str:
    """The lowercase-hyphen name of a tag of either dialect.

    Tags outside the table are kept as their lower-case form, so that unknown
    legacy elements (CAMPAIGNREF, FROM_MASK, …) pass through and are ignored.
    """
    return _CANONICAL.get(key(tag), tag.lower())


def writes(name: str, dialect: Dialect) -> bool:
    """Whether answers and postbacks of a dialect carry the field at all."""
    return dialect is Dialect.LEGACY or name not in LEGACY_ONLY


def written(name: str, dialect: Dialect) -> str:
    """How a canonical name is written in a dialect's answers and postbacks."""
    if dialect is Dialect.CURRENT:
        return name
    aliases = ALIASES.get(name)
    return aliases[0] if aliases else name.upper().replace("-", "")


def root_dialect(root_tag: str) -> Dialect:
    """`<REQUEST>` (upper case) is the legacy dialect; anything else the current one."""
    return Dialect.LEGACY if root_tag.isupper() else Dialect.CURRENT
