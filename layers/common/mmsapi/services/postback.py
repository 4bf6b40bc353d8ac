"""Postback delivery (docs/postbacks.md): bus events become signed XML POSTs to the account.

An event's detail is {"code": "N003", "account_id": "...", "fields": {...}}. The
XML is the code's origin (MMS_MT; MMS_MO for a received message, docs/inbound.md),
the code, then the fields in POSTBACK_FIELDS order (absent ones omitted), in the
account's postback dialect.

Delivery policy: success is any 2xx. Anything else (timeout, refused URL, 3xx,
4xx, 5xx) raises DeliveryError so that SQS delivers the message again after its
visibility timeout, and moves it to the dead-letter queue after the last try.
Redirects are not followed: like other webhook senders, we ask customers to
configure the final URL (a 3xx is a failed attempt). Receivers de-duplicate with
X-MMS-Postback-Id (the outbox id in the detail, e.g. "send-42-N101": the same on every
retry and every relay of the event; delivery is at least once) and authenticate with
X-MMS-Signature: sha256=<hex HMAC-SHA256 of the exact body, keyed with the
account's postback secret>; the header is omitted when the account has no secret.
An unknown or disabled account, or one without a postback URL, drops the event
(the local runtime posts the latter to its inbox: settings.local_postback_inbox).

Every event is counted once, by code (metric Postbacks, dimension code): the E999
alarm and the dashboard's "Postbacks by code" read it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final, Protocol

from mmsapi.media.guard import NetworkError, post_bytes
from mmsapi.models import Account, Dialect
from mmsapi.observability import count, logger, tally
from mmsapi.redact import redact
from mmsapi.settings import Settings, get_settings
from mmsapi.xml.postbacks13 import with_required
from mmsapi.xml.render import Field, postback

ORIGIN: Final = "MMS_MT"
# Codes that tell something other than a message the account sent (MT).
ORIGINS: Final[dict[str, str]] = {"N401": "MMS_MO", "N402": "SMS_MO"}
# The order of the fields after origin and code, for every postback code.
POSTBACK_FIELDS: Final[tuple[str, ...]] = (
    "sent-as",
    "status",
    "mms-id",
    "audio-name",
    "video-name",
    "image-name",
    "from",
    "from-mask",  # legacy dialect only (xml/dialect.py LEGACY_ONLY)
    "to",
    "keyword",  # MO (N401, N402): the inbox (or STOP/START/HELP) keyword its first word is
    "tracking-id",
    "operator-id",
    "timestamp",
    "message-subject",  # MO (N401)
    "message-text",  # SMS MO (N402): the text the phone sent
    "content",  # MO (N401): one `file` URL per part
    "status-details",
    "handset",
    "aggregator-id",  # legacy dialect only (xml/dialect.py LEGACY_ONLY)
    "client-reference",
)
# Fields whose value is a list: one child element of this name per item.
LIST_FIELDS: Final[dict[str, str]] = {"content": "file"}
CONTENT_TYPE: Final = "application/xml; charset=utf-8"
# CloudWatch metric (in the metrics namespace) with one data point per event, dimension code.
POSTBACKS_METRIC: Final = "Postbacks"
SIGNATURE_HEADER: Final = "X-MMS-Signature"
ID_HEADER: Final = "X-MMS-Postback-Id"


class DeliveryError(Exception):
    """A postback attempt failed and should be retried."""

    def __init__(self, reason: str, outcome: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        # What `mmsapi-admin trace` shows: no URL (its query may hold the customer's token).
        self.outcome = redact(outcome or reason)


class MalformedEventError(ValueError):
    """An event without the detail a postback needs (a producer bug: goes to the DLQ)."""


class AttemptLog(Protocol):
    """Where each delivery attempt is noted for `mmsapi-admin trace`
    (store/postback_attempts.PostbackAttemptsStore fits)."""

    def record(self, postback_id: str, attempt: int, outcome: str) -> None: ...


def _note(log: AttemptLog | None, postback_id: str, attempt: int, outcome: str) -> None:
    """Best effort: a delivered postback must not be sent again because its note failed."""
    if log is None:
        return
    try:
        log.record(postback_id, attempt, outcome)
    except Exception as exc:  # the note is for people; the delivery is what counts
        logger.warning("postback attempt not noted", extra={"reason": type(exc).__name__})


class AccountLookup(Protocol):
    """What handle_event needs of the accounts store (AccountStore fits)."""

    def get(self, account_id: str) -> Account | None: ...


def build_postback(detail: Mapping[str, Any], dialect: Dialect) -> bytes:
    """The postback XML of an event's detail."""
    code = detail.get("code")
    if not isinstance(code, str) or not code:
        raise MalformedEventError("event detail has no code")
    given = detail.get("fields") or {}
    if not isinstance(given, Mapping):
        raise MalformedEventError("event detail fields is not an object")
    if dialect is Dialect.LEGACY:
        given = with_required(code, given)  # what 1.3 receivers expect (docs/legacy-1.3.md)
    fields: list[Field] = [("origin", origin_of(code)), ("code", code)]
    fields.extend(
        (name, _value(name, given[name])) for name in POSTBACK_FIELDS if given.get(name) is not None
    )
    return postback(fields, dialect)


def origin_of(code: str) -> str:
    return ORIGINS.get(code, ORIGIN)


def _value(name: str, value: Any) -> str | list[Field]:
    item = LIST_FIELDS.get(name)
    if item is None:
        return str(value)
    # A list field given one text (or none: "") has that one item (or none).
    items = value if isinstance(value, list) else [value] if value != "" else []
    return [(item, str(v)) for v in items]


def sign(body: bytes, secret: str) -> str:
    """The X-MMS-Signature value: sha256=<hex HMAC-SHA256 of body keyed with secret>."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def deliver(
    url: str, body: bytes, secret: str, event_id: str, settings: Settings | None = None
) -> int:
    """POST one postback through the network guard; the HTTP status on 2xx,
    DeliveryError otherwise."""
    settings = settings or get_settings()
    headers = {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": settings.postback_user_agent,
    }
    if event_id:
        headers[ID_HEADER] = event_id
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    try:
        status = post_bytes(
            url,
            body,
            headers,
            allow_loopback=settings.allow_loopback_media,
            # The legacy policy: the receiver answers within the timeout, or we retry.
            timeout=settings.postback_timeout,
            max_response_bytes=None,
        ).status
    except NetworkError as exc:
        raise DeliveryError(f"postback to {url} failed: {exc.reason}", exc.reason) from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"postback to {url} answered HTTP {status}", f"HTTP {status}")
    return status


def count_postback(event: Mapping[str, Any]) -> None:
    """Count one event under its code: metric Postbacks{service, code} (CloudWatch EMF).

    Printed at once, not tallied: it is counted on the first attempt only, before the
    delivery, so an invocation Lambda then kills (its timeout) has counted it already.
    """
    detail = event.get("detail")
    code = detail.get("code") if isinstance(detail, Mapping) else None
    if not isinstance(code, str) or not code:
        return  # handle_event refuses it as malformed
    count(POSTBACKS_METRIC, code=code)


def postback_id(event: Mapping[str, Any]) -> str:
    """The postback's id: the outbox id its detail carries (stable across relays), else
    the EventBridge event id (an event published before the outbox)."""
    detail = event.get("detail")
    given = detail.get("postback_id") if isinstance(detail, Mapping) else None
    return str(given or event.get("id") or "")


def handle_event(
    event: Mapping[str, Any],
    accounts: AccountLookup,
    settings: Settings | None = None,
    attempt: int = 1,
    attempts: AttemptLog | None = None,
) -> None:
    """Deliver the postback of one EventBridge event (id, detail-type, source, detail);
    `attempt` is the SQS receive count of its message (1 on the first try), noted with
    its outcome in `attempts`."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("event has no detail")
    event_id = postback_id(event)
    account_id = str(detail.get("account_id") or "")
    code = str(detail.get("code") or "")
    context = {"event_id": event_id, "account_id": account_id, "code": code, "attempt": attempt}
    account = accounts.get(account_id) if account_id else None
    if account is None or not account.enabled:
        logger.warning("postback dropped: unknown or disabled account", extra=context)
        _note(attempts, event_id, attempt, "dropped: unknown or disabled account")
        return
    # No URL: dropped; in the local runtime, to its inbox (settings.local_postback_inbox).
    inbox = (settings or get_settings()).local_postback_inbox
    url = account.postback_url or (f"{inbox}{account.account_id}" if inbox else "")
    if not url:
        logger.info("postback dropped: the account has no postback URL", extra=context)
        _note(attempts, event_id, attempt, "dropped: the account has no postback URL")
        return
    body = build_postback(detail, account.postback_dialect)
    try:
        status = deliver(url, body, account.postback_secret, event_id, settings)
    except DeliveryError as exc:
        logger.warning("postback attempt failed", extra={**context, "reason": exc.reason})
        tally("PostbackAttemptsFailed", code=code)
        _note(attempts, event_id, attempt, f"failed: {exc.outcome}")
        raise
    logger.info("postback delivered", extra={**context, "status": status})
    _note(attempts, event_id, attempt, f"delivered (HTTP {status})")
    tally("PostbacksDelivered", code=code)
