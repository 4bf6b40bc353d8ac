"""MMS a phone sends to an account's shortcode (MO): stored, told as N401 (docs/inbound.md).

The MMSC posts an MM7 DeliverReq to the carrier route; this answers the DeliverRsp:

1. read and bound it (carrier/mm7_deliver.py): nothing is written for a request that
   is malformed or out of bounds, it is answered with the MM7 status that says why;
2. find the account by the recipient shortcode (store/shortcodes.py, consistent);
3. recognise the keyword: the first word of the subject, else of the first text part,
   among the account's inbox keywords (case-insensitive; empty when none matches);
4. store every part in the media bucket (store/inbox.py) with a link secret;
   a STOP/START/HELP is recorded and answered by SMS (services/opt_out.py);
5. write the N401 postback to the outbox (relayed to the bus, delivered signed by
   PostbackFunction, in the account's dialect), each part as a download link.

A step that fails (any exception) removes what this request wrote and answers 3000
(server error), so the MMSC sends the message again: nothing half-stored stays behind.
A message sent again is the same message (mo_identity): when its parts are already
stored whole they are not written again, and its N401 is put again (same postback id).
The path is shared: an SMS MO (services/sms_inbound.py) finds its account and keyword
the same way, and so answers STOP/START/HELP.

Each part's download link (services/mo_links.py) works for LINK_DAYS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from mmsapi.carrier.mm7_deliver import (
    ADDRESS_NOT_FOUND,
    SERVER_ERROR,
    DeliverError,
    ReceivedDeliver,
    build_deliver_rsp,
    parse_deliver_req,
    sniff_transaction_id,
    sniff_version,
)
from mmsapi.models import Account
from mmsapi.numbers import ascii_digits
from mmsapi.observability import logger, tag
from mmsapi.phones import sender_digits
from mmsapi.services.context import Context
from mmsapi.services.mo_links import LINK_DAYS, file_link, secret_hash
from mmsapi.services.opt_out import Received, handle_keyword, inbox_keyword
from mmsapi.store.inbox import InboxStore, StoredPart, mo_key
from mmsapi.store.outbox import Postback
from mmsapi.store.shortcodes import account_by_shortcode

MO_CODE: Final = "N401"
MO_EVENT: Final = "MessageReceived"
# HTTP headers MMSCs name the sender's operator in (the postback's operator-id).
OPERATOR_HEADERS: Final = ("x-mms-operator-id", "x-skycore-carrier-id", "x-mblox-operator-id")
MAX_OPERATOR_ID_DIGITS: Final = 19


@dataclass(frozen=True)
class Answer:
    """The HTTP status and the DeliverRsp body."""

    status: int
    body: bytes


def mo_tracking_id(mo_id: str) -> str:
    return f"MMS_MO_{mo_id}"


def mo_postback_id(mo_id: str) -> str:
    return f"mo-{mo_id}-{MO_CODE}"


def keyword_of(mo: ReceivedDeliver, keywords: list[str]) -> str:
    """The account's keyword that the subject's (else the first text's) first word is."""
    return inbox_keyword((mo.subject, mo.first_text), keywords)


def operator_id(headers: Mapping[str, str]) -> str:
    for name in OPERATOR_HEADERS:
        value = headers.get(name, "").strip()
        if ascii_digits(value) and len(value) <= MAX_OPERATOR_ID_DIGITS:
            return value
    return ""


def _refuse(body: bytes, status: int, details: str) -> Answer:
    logger.warning("MMS MO refused", extra={"mm7_status": status, "reason": details[:200]})
    rsp = build_deliver_rsp(sniff_transaction_id(body), sniff_version(body), status, details)
    # 3xxx: our failure, the MMSC sends it again; others are final (HTTP 200, MM7 status).
    return Answer(500 if status == SERVER_ERROR else 200, rsp)


def mo_identity(account_id: str, mo: ReceivedDeliver) -> str:
    """The message's id, the same when the MMSC sends it again (our answer was lost):
    its parts, postback id and links are then the same ones. The resend's N401 is put
    again, with the same X-MMS-Postback-Id: at least once, receivers de-duplicate by it
    (a new message that reuses a TransactionID differs in its content, time or sender)."""
    digest = hashlib.sha256()
    for value in (account_id, mo.sender, mo.transaction_id, mo.linked_id, mo.subject):
        digest.update(value.encode("utf-8") + b"\0")
    digest.update((mo.timestamp.isoformat() if mo.timestamp else "").encode("ascii") + b"\0")
    for part in mo.parts:
        digest.update(part.content_type.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(part.data).digest())
    return digest.hexdigest()[:16]


def link_secret(account_secret: str, mo_id: str) -> str:
    """The download links' secret: derived, so that a resent message keeps its links
    (only its SHA-256 is stored; the postback secret it comes from never leaves us)."""
    mac = hmac.new(account_secret.encode("utf-8"), b"mo-link\0" + mo_id.encode(), "sha256")
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode("ascii")


def _account(ctx: Context, mo: ReceivedDeliver) -> tuple[Account, str] | None:
    for recipient in mo.recipients:
        account = account_by_shortcode(ctx.accounts, recipient)
        if account is not None:
            return account, recipient
    return None


def receive_mms(
    ctx: Context, body: bytes, content_type: str, headers: Mapping[str, str], base_url: str
) -> Answer:
    """Handle a DeliverReq; the DeliverRsp to answer (headers: lower-case names).
    Never raises: what fails on our side is answered 3000 (HTTP 500), to be sent again."""
    try:
        mo = parse_deliver_req(body, content_type)
    except DeliverError as exc:
        return _refuse(body, exc.status, exc.details)
    inbox = InboxStore(ctx.media.bucket)
    written: list[str] = []
    try:
        found = _account(ctx, mo)
        if found is None:
            return _refuse(body, ADDRESS_NOT_FOUND, "no account holds the recipient shortcode")
        account, shortcode = found
        # The sender as sends name it: a STOP from 4082257140 blocks sends to +14082257140.
        region = next((s.country for s in account.shortcodes if s.code == shortcode), "")
        mo.sender = sender_digits(mo.sender, region, mo.sender_international)
        mo_id = mo_identity(account.account_id, mo)
        tag(account=account.account_id, tracking_id=mo_tracking_id(mo_id))
        texts = (mo.subject, mo.first_text)
        received = Received("mms", mo_id, mo_id, mo.sender, shortcode, texts, mo.timestamp)
        if not account.enabled:  # a STOP/START/HELP still counts and is answered; no N401
            if not handle_keyword(ctx, account, received):
                return _refuse(body, ADDRESS_NOT_FOUND, "the shortcode's account is disabled")
            logger.info("keyword to a disabled account")
            return Answer(200, build_deliver_rsp(mo.transaction_id, mo.version))
        # Everything that reads the message is done before the first write.
        keyword = keyword_of(mo, account.inbox_keywords)
        secret = link_secret(account.postback_secret, mo_id)
        first = _stored(inbox, account.account_id, mo_id, len(mo.parts))
        if first is not None and first.link_hash != secret_hash(secret):
            # The postback secret was rotated since the first delivery: its links (whose
            # hash the parts keep) still open; those made now cannot (only a hash is kept).
            logger.warning("MMS MO sent again after a postback secret rotation")
        if first is None:
            expires = int(time.time()) + LINK_DAYS * 86_400
            for number, part in enumerate(mo.parts, start=1):
                stored = StoredPart(
                    mo_key(account.account_id, mo_id, number), secret_hash(secret), expires
                )
                inbox.put(stored, part.data, part.content_type, part.filename)
                written.append(stored.key)
        links = [
            file_link(base_url, account.account_id, mo_id, n, secret)
            for n in range(1, len(mo.parts) + 1)
        ]
        # STOP/START/HELP: recorded and answered before the N401 that tells it (a failure
        # answers 3000, and the resend answers what was not answered yet).
        replied = handle_keyword(ctx, account, received)
        keyword = keyword or replied  # an inbox keyword first, else STOP/START/HELP
        postback = _postback(account, mo, mo_id, shortcode, keyword, operator_id(headers), links)
        ctx.outbox.put(postback)
    except Exception as exc:  # any failure: the MMSC must be answered
        logger.exception("MMS MO not stored", extra={"keys": written})
        try:
            inbox.delete(written)
        except Exception:
            logger.exception("MO parts left behind", extra={"keys": written})
        return _refuse(body, SERVER_ERROR, f"could not store the message: {exc}"[:200])
    logger.info("MMS MO received", extra={"parts": len(mo.parts), "mm7_version": mo.version})
    return Answer(200, build_deliver_rsp(mo.transaction_id, mo.version))


def _stored(inbox: InboxStore, account_id: str, mo_id: str, parts: int) -> StoredPart | None:
    """The last part, when a first delivery of this message stored it whole (parts are
    written in order). Its parts are then neither written again (they keep the first
    delivery's link hash and expiry, so the first N401's links keep working) nor
    deleted if this delivery fails (that N401 may carry their links)."""
    return inbox.link_of(mo_key(account_id, mo_id, parts)) if parts else None


def _postback(
    account: Account,
    mo: ReceivedDeliver,
    mo_id: str,
    shortcode: str,
    keyword: str,
    operator: str,
    links: list[str],
) -> Postback:
    """N401: every field always there (empty when unknown), as the edition's example."""
    fields: dict[str, object] = {
        "from": mo.sender,
        "to": shortcode,
        "keyword": keyword,
        "tracking-id": mo_tracking_id(mo_id),
        "operator-id": operator,
        "timestamp": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        "message-subject": mo.subject,
        "content": links,
    }
    return Postback(
        id=mo_postback_id(mo_id),
        detail_type=MO_EVENT,
        detail={
            "code": MO_CODE,  # origin MMS_MO: services/postback.ORIGINS
            "account_id": account.account_id,
            "fields": fields,
        },
    )
