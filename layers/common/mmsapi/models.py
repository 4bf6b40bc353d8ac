"""The records that services take and return, and that stores persist.

Plain dataclasses (`@record`: slotted, keyword-only), not pydantic: every handler imports
this module, and importing pydantic costs half a bare `import boto3` (issue 11). Stores
turn stored dicts into records and back with mmsapi/records.py; nothing here validates
on construction."""

from __future__ import annotations

import secrets
from dataclasses import field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from mmsapi.media.types import MediaKind
from mmsapi.records import record

ALL_ACTIONS: tuple[str, ...] = (
    "saveMMS",
    "sendSavedMMS",
    "sendMMS",
    "deleteMMSID",
    "getMMSTemplates",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Dialect(StrEnum):
    CURRENT = "current"  # <request><api-key>… answered in lowercase-hyphen
    LEGACY = "legacy"  # <REQUEST><API_KEY>… answered in uppercase


@record
class Shortcode:
    code: str
    country: str = "US"  # ISO 3166 alpha-2 of the recipients this shortcode serves
    default: bool = False  # the default shortcode for its country


def _mib(n: float) -> int:
    return int(n * 1024 * 1024)


# The default file caps per kind, which are also the most an account may be given: the
# benchmarks measure the functions at these sizes (benchmarks/hostile_inputs.py).
DEFAULT_CAPS: Final[dict[MediaKind, int]] = {
    MediaKind.IMAGE: _mib(25),
    MediaKind.AUDIO: _mib(40),
    MediaKind.VIDEO: _mib(200),
    MediaKind.TEXT: 64 * 1024,
    MediaKind.VCARD: _mib(1),
    MediaKind.ICAL: _mib(1),
    MediaKind.PDF: _mib(10),
    MediaKind.PASSBOOK: _mib(10),
}
# The most an operator may set each other limit to (services/accounts.check_limits):
# slides and text keep the largest template item well below DynamoDB's 400 KB
# (tests/integration/test_template_item_bound.py); rendition budgets keep what delivery
# loads and re-encodes small; media seconds are the spec's 30 s slide.
LIMIT_CEILINGS: Final[dict[str, int]] = {
    "max_slides": 10,  # the spec's 8 by default; its 001 mentions 9
    "max_text_chars": 5000,  # docs/actions.md#account-limits
    "max_subject_chars": 500,
    "image_budget_bytes": _mib(2),
    "image_max_dimension": 4096,
    "video_budget_bytes": _mib(5),
    "audio_budget_bytes": _mib(5),
    "max_media_seconds": 30,
}


@record
class Limits:
    """Per-account limits. Defaults accept what phones and marketing tools produce
    today (multi-MB photos, short HD video): such media is adapted down, not refused."""

    max_slides: int = 8
    max_text_chars: int = 5000
    max_subject_chars: int = 80
    max_bytes: dict[MediaKind, int] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    # Stored image renditions are fitted into this many bytes at save time.
    image_budget_bytes: int = 600 * 1024
    image_max_dimension: int = 1600
    # Encoded renditions are fitted into these budgets (send time adapts further per handset).
    video_budget_bytes: int = 600 * 1024
    audio_budget_bytes: int = 300 * 1024
    max_media_seconds: int = 30

    def cap(self, kind: MediaKind) -> int:
        return self.max_bytes.get(kind, _mib(10))


# Rate limits (docs: limits and idempotency). Generous by default: a client meets them only
# when its operator lowers them; the HTTP API's stage throttle is the backstop above.
DEFAULT_THROUGHPUT: Final = 100  # requests per second, per action
DEFAULT_DAILY_QUOTA: Final = 1_000_000  # requests per UTC day
# The bounds an operator may set them within (the admin tool validates against these).
RATE_LIMIT_BOUNDS: Final[dict[str, tuple[float, float]]] = {
    "throughput": (1, 10_000),
    "min_interval_seconds": (0, 86_400),
    "daily_quota": (1, 1_000_000_000),
}


@record
class RateLimits:
    """How often an account may call (services/limits.py): E113, E106, E120."""

    # Requests per second per action; an action not named has DEFAULT_THROUGHPUT.
    throughput: dict[str, int] = field(default_factory=dict)
    # Least time between two calls of the account, any action; 0 = no minimum.
    min_interval_seconds: float = 0.0
    # Requests per UTC day, all actions; the count starts again at 00:00 UTC.
    daily_quota: int = DEFAULT_DAILY_QUOTA

    def throughput_of(self, action: str) -> int:
        return self.throughput.get(action, DEFAULT_THROUGHPUT)


# STOP/START/HELP (docs/inbound.md#opt-out-and-help): CTIA's words; `{account}` in a reply
# text is the account's name.
# revoke, optout: the FCC's 2024 revocation rule names "revoke" and "opt out" as reasonable
OPT_OUT_KEYWORDS: Final = (
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
)
OPT_IN_KEYWORDS: Final = ("start", "unstop")


@record
class OptOutSettings:
    """The keywords a phone opts out, back in, or asks for help with, and the replies."""

    opt_out_keywords: list[str] = field(default_factory=lambda: list(OPT_OUT_KEYWORDS))
    opt_in_keywords: list[str] = field(default_factory=lambda: list(OPT_IN_KEYWORDS))
    help_keywords: list[str] = field(default_factory=lambda: ["help"])
    opt_out_text: str = (
        "{account}: You are unsubscribed and will receive no more messages. "
        "Reply START to resubscribe."
    )
    opt_in_text: str = (
        "{account}: You are subscribed again. Msg&data rates may apply. "
        "Reply HELP for help, STOP to cancel."
    )
    help_text: str = (
        "{account}: Reply STOP to cancel, START to resubscribe. Msg&data rates may apply."
    )


@record
class Account:
    account_id: str
    name: str
    key_hash: str  # sha256 hex of the API key; the key itself is never stored
    enabled: bool = True
    shortcodes: list[Shortcode] = field(default_factory=list)
    default_service_id: str = ""
    postback_url: str = ""
    postback_dialect: Dialect = Dialect.CURRENT
    postback_secret: str = ""  # HMAC-SHA256 key for the X-MMS-Signature header
    allowed_actions: list[str] = field(default_factory=lambda: list(ALL_ACTIONS))
    ip_allowlist: list[str] = field(default_factory=list)  # CIDRs; empty = any address
    limits: Limits = field(default_factory=Limits)
    created_at: datetime = field(default_factory=utcnow)
    # Further service-ids besides the default one (E627 for any other).
    service_ids: list[str] = field(default_factory=list)
    # Operators the account may name (E651 for others); empty = any numeric operator-id.
    operator_ids: list[str] = field(default_factory=list)
    # Numbers that opted out (E114), E.164 without '+'.
    blocked_numbers: list[str] = field(default_factory=list)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    # Keywords an MO's first word is matched against, lower case (docs/inbound.md#keywords).
    inbox_keywords: list[str] = field(default_factory=list)
    # STOP/START/HELP keywords and replies (docs/accounts.md#opt-out-and-help).
    opt_out: OptOutSettings = field(default_factory=OptOutSettings)


class TemplateStatus(StrEnum):
    ENCODING = "encoding"  # audio/video being encoded: locked (E626)
    READY = "ready"
    FAILED = "failed"  # encoding failed: unusable
    DELETING = "deleting"  # being removed: invisible


@record
class Rendition:
    """One encoded form of a media file (e.g. MP4 and 3GP of one video)."""

    key: str
    content_type: str
    profile: str
    codec: str
    bytes: int
    width: int | None = None
    height: int | None = None


@record
class StoredMedia:
    """One media file of a slide as kept in S3."""

    kind: MediaKind
    source_url: str  # the URL as given (query string already stripped)
    content_type: str  # canonical MIME type of the original
    original_key: str
    original_bytes: int
    # Rendition used for sending (images adapted at save time; encoded media later).
    rendition_key: str | None = None
    rendition_type: str | None = None
    rendition_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    duration_seconds: float | None = None
    # Every encoded form (audio/video), best first; rendition_key is the first one's key.
    renditions: list[Rendition] = field(default_factory=list)


@record
class TemplateSlide:
    text: str | None = None
    duration: int = 10
    media: list[StoredMedia] = field(default_factory=list)

    def media_of(self, kind: MediaKind) -> StoredMedia | None:
        return next((m for m in self.media if m.kind == kind), None)


@record
class Template:
    mms_id: int
    account_id: str
    name: str
    subject: str = ""
    fallback_sms_text: str = ""
    disable_fallback_sms: bool = False
    disable_fallback_sms_link: bool = False
    client_reference: str = ""
    status: TemplateStatus
    slides: list[TemplateSlide]
    merge_tags: list[str] = field(default_factory=list)
    size_bytes: int = 0  # bytes stored for this template (originals + renditions)
    created_at: datetime = field(default_factory=utcnow)
    failure_code: str = ""  # E002/E003/E004 when status is failed
    # sendMMS saves a template for one send: that send waits for the encoding, and
    # encoding failures are told as E012/E013 instead of E002/E003.
    single_send_id: int | None = None


# ---- parsed requests -------------------------------------------------------


@record
class MediaRef:
    """A media element of a slide as the client wrote it."""

    kind: MediaKind
    url: str


@record
class SlideSpec:
    number: int  # 1-based position in the request
    text: str | None = None
    duration: str | None = None  # raw; validated by rules
    media: list[MediaRef] = field(default_factory=list)
    template_ids: list[str] = field(default_factory=list)


@record
class SaveRequest:
    name: str | None = None
    subject: str | None = None
    fallback_sms_text: str | None = None
    disable_fallback_sms: str | None = None
    disable_fallback_sms_link: str | None = None
    client_reference: str | None = None
    slides: list[SlideSpec] = field(default_factory=list)


@record
class SendRequest:
    """sendSavedMMS / the sending half of sendMMS, as the client wrote it (raw strings)."""

    to: str | None = None
    sender: str | None = None
    service_id: str | None = None
    operator_id: str | None = None
    mms_id: str | None = None
    fallback_sms_text: str | None = None
    custom_subject: str | None = None
    # (slide, value)
    custom_texts: list[tuple[str | None, str | None]] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)
    ddm_force: str | None = None
    ddm_text: str | None = None
    ddm_subject: str | None = None
    ddm_timeout: str | None = None
    client_reference: str | None = None


@record
class TemplateSummary:
    mms_id: int
    name: str
    subject: str
    created_at: datetime
    total_slides: int
    size_bytes: int


# ---- sends -----------------------------------------------------------------


class SendStatus(StrEnum):
    WAITING = "waiting"  # sendMMS: its template is still encoding
    QUEUED = "queued"
    SUBMITTING = "submitting"  # claimed by one delivery worker: nobody else sends it
    DISCOVERING = "discovering"  # Device Discovery Message out, waiting for its report
    SENT = "sent"  # accepted by the carrier (MMS) or the SMS gateway (fallback)
    DELIVERED = "delivered"
    FAILED = "failed"


@record
class CustomText:
    slide: int
    value: str


@record
class DdmRequest:
    text: str
    subject: str = "Device Discovery"
    timeout_minutes: int = 5
    force: bool = False


@record
class SendStep:
    """One stored change of a send: when, what it became, and the postback it queued."""

    at: datetime
    status: SendStatus
    sent_as: str = ""
    carrier_message_id: str = ""
    handset: str = ""
    postback: str = ""  # the code of the postback written with this change, if any
    rendition: str = ""  # sent as MMS: the handset profile and parts it was adapted to


@record
class Send:
    """One message to one recipient, from the API answer to its last delivery report."""

    send_id: int
    account_id: str
    mms_id: int
    to: str  # E.164 digits without '+'
    sender: str  # the shortcode used (possibly the recipient country's default)
    requested_from: str
    service_id: str
    operator_id: str = ""
    fallback_sms_text: str = ""
    custom_subject: str | None = None
    custom_texts: list[CustomText] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)
    ddm: DdmRequest | None = None
    ddm_until: int = 0  # epoch second the DDM's report is awaited until (its timeout message)
    discovered: bool = False  # discovery is over (learnt or timed out): never again
    client_reference: str = ""
    status: SendStatus = SendStatus.QUEUED
    sent_as: str = ""  # MMS or SMS
    carrier_message_id: str = ""
    handset: str = ""
    # The hosted page of this send (fallback SMS link): f"{send_id}.{view_secret}".
    view_secret: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    # Every stored change, oldest first (store/sends.py appends; mmsapi-admin trace).
    history: list[SendStep] = field(default_factory=list)
    # The adaptation the MMS went out as (deliver): "<profile>: <type> <KB>, ..."; the
    # history's sent step keeps it.
    rendition: str = ""
