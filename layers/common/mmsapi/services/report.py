"""Delivery reports from carriers: MM7 DeliveryReportReq for MMS, JSON for fallback SMS.

Each updates its send, teaches the handset cache, and becomes a postback
(N102/E102 for MMS, N202/E202 for SMS). The MM7 route also takes the MMS that phones
send (DeliverReq, services/inbound.py): `mm7_request` tells them apart; the SNS topics
also bring the SMS that phones send (services/sms_inbound.py): `sns_message` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from mmsapi.carrier import mm7
from mmsapi.carrier.mm7 import MMStatus
from mmsapi.carrier.mm7_deliver import check_bounds, is_deliver_req
from mmsapi.carrier.profiles import profile_for_uaprof
from mmsapi.models import Send, SendStatus
from mmsapi.observability import logger, send_ids, tag
from mmsapi.services.announce import send_postback
from mmsapi.services.context import Context
from mmsapi.services.sms_inbound import MalformedSms, is_inbound_sms, receive_sms


@dataclass(frozen=True)
class Outcome:
    code: str
    status: str
    send_status: SendStatus


DELIVERED: Final = Outcome("N102", "Message Sent/Delivered", SendStatus.DELIVERED)
# MMStatus -> outcome; statuses not listed (Deferred, Indeterminate…) are interim: no postback.
MM7_OUTCOMES: Final[dict[MMStatus, Outcome]] = {
    MMStatus.RETRIEVED: DELIVERED,
    MMStatus.FORWARDED: DELIVERED,
    MMStatus.REJECTED: Outcome("E102", "Message Sent/Rejected", SendStatus.FAILED),
    MMStatus.EXPIRED: Outcome("E102", "Message Sent/Expired", SendStatus.FAILED),
    MMStatus.UNRECOGNISED: Outcome("E102", "Message Sent/Not Supported", SendStatus.FAILED),
    MMStatus.NOT_SUPPORTED: Outcome("E102", "Message Sent/Not Supported", SendStatus.FAILED),
    MMStatus.DELIVERY_CONDITION_NOT_MET: Outcome("E102", "Message Sent/Failed", SendStatus.FAILED),
    MMStatus.UNREACHABLE: Outcome("E102", "Message Sent/Failed", SendStatus.FAILED),
}
SMS_DELIVERED: Final = Outcome("N202", "Message Sent/Delivered", SendStatus.DELIVERED)
SMS_FAILED: Final = Outcome("E202", "Message Sent/Failed", SendStatus.FAILED)


def _settle(
    ctx: Context,
    send: Send,
    outcome: Outcome,
    handset: str | None = None,
    details: str | None = None,
) -> None:
    if send.status is not SendStatus.SENT:
        return  # a repeated report: the first one was told already
    send.status = outcome.send_status
    if handset:
        send.handset = handset
    # The handset is told on delivery only (docs/postbacks.md#fields: N102 and N502),
    # the carrier's reason on failure only (E102's STATUSDETAILS, as 1.3's example).
    delivered = outcome.send_status is SendStatus.DELIVERED
    postback = send_postback(
        send,
        outcome.code,
        outcome.status,
        handset=handset if delivered else None,
        details=None if delivered else details,
    )
    ctx.sends.save(send, expected=SendStatus.SENT, postback=postback)


def failure_details(report: mm7.DeliveryReport) -> str:
    """E102's status-details: the carrier's StatusText, else the MMStatus it reported."""
    text = " ".join(report.status_text.split())
    return text or f"the carrier reported {report.mm_status_raw or report.mm_status.value}"


def mm7_report(ctx: Context, body: bytes, content_type: str) -> bytes:
    """Handle a DeliveryReportReq; returns the DeliveryReportRsp to answer with.

    Raises mm7.MM7Error for a body that is not a delivery report.
    """
    report = mm7.parse_delivery_report(body, content_type)
    send = ctx.sends.by_carrier_message_id(report.message_id)
    if send is not None:
        tag(**send_ids(send))
    handset = ""
    if report.ua_prof:
        profile = profile_for_uaprof(report.ua_prof)
        ctx.handsets.learn(
            report.recipient.lstrip("+"), profile.profile_id, report.ua_prof, "delivery-report"
        )
        handset = profile.name
    outcome = MM7_OUTCOMES.get(report.mm_status)
    if send is None:
        logger.warning("report for an unknown message", extra={"message_id": report.message_id})
    elif send.status is SendStatus.DISCOVERING and outcome is not None:
        # Only a Device Discovery Message's report: the discovery (and send) code loads here.
        from mmsapi.services.ddm import learnt

        learnt(ctx, send, outcome.send_status is SendStatus.DELIVERED, handset or None)
    elif outcome is not None and send.sent_as == "MMS":
        _settle(ctx, send, outcome, handset or None, failure_details(report))
    logger.info("delivery report", extra={"mm_status": report.mm_status.value})
    version: mm7.Version = "5.3.0" if report.version == "5.3.0" else "6.8.0"
    return mm7.build_delivery_report_rsp(report.transaction_id, version=version)


def mm7_request(
    ctx: Context, body: bytes, headers: Mapping[str, str], base_url: str
) -> tuple[int, bytes]:
    """A request the MMSC posts on the MM7 route: (HTTP status, MM7 answer).

    A DeliverReq (an MMS from a phone) is answered with a DeliverRsp, whatever it holds;
    anything else is read as a DeliveryReportReq (mm7.MM7Error when it is not one, or
    is out of the bounds of mm7_deliver.check_bounds). The
    start part's operation decides (mm7_deliver.is_deliver_req), wherever that part is.
    `headers` have lower-case names; `base_url` is where the MMSC reached this API.
    """
    content_type = headers.get("content-type", "text/xml")
    if is_deliver_req(body, content_type):
        # An MMS from a phone: its modules (inbox, opt-out, MO links) load for the first.
        from mmsapi.services.inbound import receive_mms

        answer = receive_mms(ctx, body, content_type, headers, base_url)
        return answer.status, answer.body
    check_bounds(body, content_type)  # a report is bounded as a DeliverReq (MM7Error)
    return 200, mm7_report(ctx, body, content_type)


def sms_report(ctx: Context, message_id: str, delivered: bool) -> bool:
    """A fallback SMS's delivery status; False if the message id is unknown."""
    send = ctx.sends.by_carrier_message_id(message_id)
    if send is None or send.sent_as != "SMS":
        return False
    tag(**send_ids(send))
    logger.info("SMS delivery report", extra={"delivered": delivered})
    _settle(ctx, send, SMS_DELIVERED if delivered else SMS_FAILED)
    return True


# End User Messaging SMS event statuses (its configuration set's event destination).
SMS_DELIVERED_STATUSES: Final = frozenset({"DELIVERED", "SUCCESSFUL"})
SMS_UNDECIDED_STATUSES: Final = frozenset({"UNKNOWN", "PENDING", "QUEUED", "SENT"})


def sns_message(ctx: Context, message: object, published: str = "") -> bool:
    """A message of an End User Messaging SNS topic: an SMS from a phone (N402,
    services/sms_inbound.py) or an SMS delivery event; True when it was acted on.
    MalformedSms for one that is neither (never retried); any other error is ours (retried).
    published: the SNS record's Timestamp, the SMS's received time."""
    if not isinstance(message, dict):
        raise MalformedSms("the SNS message is not a JSON object")
    if is_inbound_sms(message):
        return receive_sms(ctx, message, _moment(published))
    return sms_event(ctx, message)


def _moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def sms_event(ctx: Context, event: dict[str, object]) -> bool:
    """An AWS End User Messaging SMS event (via SNS); only final ones settle a send."""
    status = str(event.get("messageStatus", "")).upper()
    if event.get("isFinal") is not True or status in SMS_UNDECIDED_STATUSES:
        return False
    return sms_report(ctx, str(event.get("messageId", "")), status in SMS_DELIVERED_STATUSES)
