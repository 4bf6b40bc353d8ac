"""SMS a phone sends to an account's number (SMS MO): told as N402 (docs/inbound.md#sms-mo).

AWS End User Messaging two-way SMS publishes each received SMS to the SmsInboundTopic
(SNS), whose message is JSON: originationNumber (the phone), destinationNumber (the
account's number), messageBody, inboundMessageId, messageKeyword and
previousPublishedMessageId (not used: keywords are the account's, replies are not
threaded). ReportFunction takes it the way an MMS MO goes:

1. read and bound it: a message that is not one (not JSON, a field missing, a number
   that is not one) raises MalformedSms: logged and counted, never retried;
2. find the account by the destination number (store/shortcodes.py); none: logged and
   counted (metric SmsMoUnrouted), dropped, as the MMSC is answered 2003 for an MMS;
3. record and answer STOP/START/HELP (services/opt_out.py), even for a disabled
   account (its phones must still be able to opt out); a disabled account is told
   nothing (metric SmsMoToDisabledAccount);
4. recognise the inbox keyword and write the N402 postback to the outbox.

The message's id is derived from the account and inboundMessageId: a message published
or delivered again is the same one, with the same tracking-id and postback id, and its
STOP is recorded and answered once. A failure on our side raises: Lambda's asynchronous
retries (2) try again, then the message waits in SmsReceiptsDLQ (alarmed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from mmsapi.models import Account
from mmsapi.numbers import phone_digits
from mmsapi.observability import count, logger, tag
from mmsapi.services.context import Context
from mmsapi.services.opt_out import Received, handle_keyword, inbox_keyword
from mmsapi.store.outbox import Postback
from mmsapi.store.shortcodes import account_by_shortcode

SMS_MO_CODE: Final = "N402"
SMS_MO_EVENT: Final = "MessageReceived"
MAX_BODY_CHARS: Final = 1600  # End User Messaging's longest SMS
MAX_ID_CHARS: Final = 128


class MalformedSms(ValueError):  # noqa: N818 - a verdict on the input
    """An SNS message that is not an End User Messaging inbound SMS."""


def is_inbound_sms(message: Mapping[str, object]) -> bool:
    """An inbound SMS, not a delivery event of the SMS receipts topic."""
    return "inboundMessageId" in message or "originationNumber" in message


def sms_mo_id(account_id: str, inbound_message_id: str) -> str:
    digest = hashlib.sha256(f"{account_id}\0{inbound_message_id}".encode())
    return digest.hexdigest()[:16]


def sms_tracking_id(mo_id: str) -> str:
    return f"SMS_MO_{mo_id}"


def _text(message: Mapping[str, object], name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str):
        raise MalformedSms(f"{name} is not a string")
    return value


def _number(message: Mapping[str, object], name: str, shortest: int) -> str:
    digits = phone_digits(_text(message, name))
    if digits is None or not shortest <= len(digits) <= 15:
        raise MalformedSms(f"{name} is not a phone number")
    return digits


def receive_sms(
    ctx: Context, message: Mapping[str, object], received_at: datetime | None = None
) -> bool:
    """Handle one inbound SMS (received_at: SNS's Timestamp); False when no account holds
    its number (dropped)."""
    sender = _number(message, "originationNumber", 8)
    destination = _number(message, "destinationNumber", 3)
    # JSON may carry lone surrogates, which no table or XML takes: each becomes '?'.
    body = _text(message, "messageBody")[:MAX_BODY_CHARS].encode("utf-8", "replace").decode()
    inbound_id = _text(message, "inboundMessageId")
    if not 0 < len(inbound_id) <= MAX_ID_CHARS or not inbound_id.isprintable():
        raise MalformedSms("inboundMessageId is not an id")
    account = account_by_shortcode(ctx.accounts, destination)
    if account is None:
        logger.warning("SMS MO to a number no account holds")
        count("SmsMoUnrouted")
        return False
    mo_id = sms_mo_id(account.account_id, inbound_id)
    tag(account=account.account_id, tracking_id=sms_tracking_id(mo_id))
    received = Received("sms", mo_id, inbound_id, sender, destination, (body,), received_at)
    replied = handle_keyword(ctx, account, received)
    if not account.enabled:  # STOP/START still count and are confirmed; no N402
        logger.info("SMS MO to a disabled account", extra={"keyword": bool(replied)})
        count("SmsMoToDisabledAccount")
        return True
    keyword = inbox_keyword((body,), account.inbox_keywords)
    ctx.outbox.put(_postback(account, mo_id, sender, destination, keyword or replied, body))
    logger.info("SMS MO received", extra={"chars": len(body)})
    return True


def _postback(
    account: Account, mo_id: str, sender: str, to: str, keyword: str, body: str
) -> Postback:
    """N402: N401's fields but the subject and the content, and the text."""
    fields: dict[str, object] = {
        "from": sender,
        "to": to,
        "keyword": keyword,
        "tracking-id": sms_tracking_id(mo_id),
        "operator-id": "",  # End User Messaging does not name the sender's operator
        "timestamp": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        "message-text": body,
    }
    return Postback(
        id=f"mo-{mo_id}-{SMS_MO_CODE}",
        detail_type=SMS_MO_EVENT,
        detail={
            "code": SMS_MO_CODE,  # origin SMS_MO: services/postback.ORIGINS
            "account_id": account.account_id,
            "fields": fields,
        },
    )
