"""Delivery of one queued send: adapt for the handset, submit by MM7, or fall back to
SMS with a link to the hosted page. Runs behind the send queue (DeliverFunction).

A send is claimed (queued -> submitting) with a conditional write before anything
goes to a carrier, so two workers, or a redelivered queue message, never send one
tracking-id twice. A carrier that is unavailable puts the claim back and raises:
the queue redelivers later with back-off.
"""

from __future__ import annotations

import uuid

from botocore.exceptions import BotoCoreError, ClientError

from mmsapi.carrier import mm7
from mmsapi.carrier.message import HandsetProfile, OutgoingMessage
from mmsapi.carrier.mm7_client import CarrierUnavailable, SubmitUnconfirmed, submit
from mmsapi.carrier.profiles import get_profile
from mmsapi.carrier.sms import SmsRefused
from mmsapi.errors import CATALOGUE, DomainError
from mmsapi.models import Send, SendStatus, Template, TemplateStatus, utcnow
from mmsapi.observability import logger, send_ids, tag
from mmsapi.services.adapt import DoesNotFit, adapt_message
from mmsapi.services.announce import send_postback
from mmsapi.services.context import Context
from mmsapi.services.personalize import fallback_text_for, subject_for, texts_for
from mmsapi.settings import get_settings
from mmsapi.store.opt_outs import OptOutStore
from mmsapi.store.outbox import Postback

SENT = "Message Sent"
FAILED = "Message Failed"
NOT_PROVISIONED = CATALOGUE["E619"]
OPTED_OUT = "the recipient opted out (STOP) after the send was accepted"


class RetryLater(Exception):  # noqa: N818 - a request to the queue, not a fault
    """The carrier or SMS gateway is unavailable: try this send again later."""


# Failures that a later attempt may not meet: AWS (stores raise DomainError), the network.
TRANSIENT: tuple[type[BaseException], ...] = (DomainError, BotoCoreError, ClientError, OSError)


def deliver(ctx: Context, send_id: int) -> str:
    """Deliver one send; returns what became of it (for logs and tests).

    A send with Device Discovery fields for a number whose handset is unknown (or
    with ddm-force) first gets its DDM (services/ddm.py): it comes back on the send
    queue, `discovered`, once the DDM's report came or its time ran out.
    """
    send = ctx.sends.get(send_id)
    if send is not None:
        tag(**send_ids(send))
    if send is not None and send.status is SendStatus.SUBMITTING and _abandoned(send):
        return _interrupted(ctx, send)
    if send is None or send.status is not SendStatus.QUEUED:
        return "not queued"  # already handled: a redelivered queue message
    if not get_settings().mm7_url:
        return _not_provisioned(ctx, send)
    if not send.discovered and _needs_discovery(ctx, send):
        # Only sends to unknown handsets take this: its module loads on first use.
        from mmsapi.services.ddm import discover

        return discover(ctx, send)
    send.status = SendStatus.SUBMITTING
    if not ctx.sends.save(send, expected=SendStatus.QUEUED):
        return "claimed elsewhere"
    try:
        if opted_out(send):  # before the SubmitReq and the fallback SMS: never sent
            return _fail(ctx, send, OPTED_OUT)
        template = ctx.templates.get(send.mms_id)
        if template is None or template.status is not TemplateStatus.READY:
            return _fail(ctx, send, "the MMS was deleted before it could be sent")
        return _send_mms(ctx, send, template, _profile_of(ctx, send))
    except mm7.MM7Error as exc:
        # The MMSC answered, but not in MM7: it may have taken the message, so no resend.
        return _fail(ctx, send, f"the carrier's answer could not be read: {exc}")
    except CarrierUnavailable as exc:
        _unclaim(ctx, send)
        raise RetryLater(str(exc)) from exc
    except HandedOverError:
        raise  # the claim stays: a retry must not submit again (the sweeper ends it)
    except TRANSIENT:
        _unclaim(ctx, send)  # e.g. S3 or DynamoDB: the queue tries again
        raise
    except Exception as exc:
        # A fault no retry can mend (a bug, a message that cannot be built): end it now
        # instead of retrying it into the dead-letter queue.
        logger.exception("delivery failed", extra={"send": send.send_id})
        return _broken(ctx, send, exc)


class HandedOverError(Exception):
    """The carrier took the message but its record could not be written.

    Giving the claim back would submit it again, so the send stays `submitting`: the
    queue's retry finds it claimed, and the sweeper ends it past its claim (E999).
    """


def _record_sent(ctx: Context, send: Send, postback: Postback) -> None:
    try:
        ctx.sends.save(send, carrier_message=True, postback=postback)
    except TRANSIENT as exc:
        raise HandedOverError(f"send {send.send_id} was sent but not recorded: {exc}") from exc


def opted_out(send: Send) -> bool:
    """Whether the recipient sent STOP since the send was accepted (its write checked it
    then): one consistent GetItem, 0.5 read units, per delivery attempt and per DDM."""
    return OptOutStore().opted_out(send.account_id, send.to)


def _broken(ctx: Context, send: Send, exc: Exception) -> str:
    send.status = SendStatus.FAILED
    details = f"delivery failed: {type(exc).__name__}"
    postback = send_postback(send, "E999", FAILED, details=details)
    ctx.sends.save(send, expected=SendStatus.SUBMITTING, postback=postback)
    return "failed: internal error"


def _not_provisioned(ctx: Context, send: Send) -> str:
    """No MMSC is configured: no retry can help, so the send ends now, told as E101
    (the API refuses new sends with E619; this one was queued before, or by the DDM)."""
    send.status = SendStatus.FAILED
    ctx.sends.save(
        send,
        expected=SendStatus.QUEUED,
        postback=send_postback(send, "E101", FAILED, details=NOT_PROVISIONED),
    )
    return "failed: carrier not provisioned"


def _unclaim(ctx: Context, send: Send) -> None:
    send.status = SendStatus.QUEUED  # give the claim back for the retry
    ctx.sends.save(send, expected=SendStatus.SUBMITTING)


def _abandoned(send: Send) -> bool:
    return (utcnow() - send.updated_at).total_seconds() > get_settings().send_claim_seconds


def _interrupted(ctx: Context, send: Send) -> str:
    send.status = SendStatus.FAILED
    ctx.sends.save(
        send,
        expected=SendStatus.SUBMITTING,
        postback=send_postback(send, "E999", FAILED, details="delivery was interrupted"),
    )
    return "interrupted"


def _needs_discovery(ctx: Context, send: Send) -> bool:
    return send.ddm is not None and (send.ddm.force or ctx.handsets.get(send.to) is None)


def _profile_of(ctx: Context, send: Send) -> HandsetProfile:
    entry = ctx.handsets.get(send.to)
    return get_profile(entry.profile_id if entry else None)


def _send_mms(ctx: Context, send: Send, template: Template, profile: HandsetProfile) -> str:
    try:
        message = adapt_message(
            template,
            profile,
            load=ctx.media.get,
            download=ctx.media.download,  # a video source is streamed to a file, not held
            subject=subject_for(template, send),
            slide_texts=texts_for(template, send),
            link_for=lambda _media: _view_link(send),
            cache=ctx.renditions,
        )
    except DoesNotFit as exc:
        logger.info("falls back to SMS", extra={"send": send.send_id, "reason": exc.reason})
        return _fallback(ctx, send, template, f"does not fit the handset: {exc.reason}")
    send.rendition = rendition_of(profile, message)
    logger.info("adapted", extra={"rendition": send.rendition})
    try:
        result = submit_mm7(send, message, f"mmsapi-{send.send_id}")
    except SubmitUnconfirmed as exc:
        # The MMSC may have taken it: never submitted twice. Told as sent; with no
        # message id to match a report to, the report wait ends it (E102) unless it is
        # reported otherwise.
        logger.warning("MM7 answer lost", extra={"send": send.send_id, "reason": exc.reason})
        return _sent_as_mms(ctx, send, None)
    logger.info("submitted", extra={"mm7_status": result.status_code})
    action = mm7.action_for(result.status_code)
    if action is mm7.Action.RETRY:
        raise CarrierUnavailable(f"MM7 {result.status_code} {result.status_text}")
    if action is mm7.Action.OK:
        return _sent_as_mms(ctx, send, result.message_id)
    reason = f"carrier answered {result.status_code} {result.status_text}".strip()
    if action is mm7.Action.FALLBACK:
        return _fallback(ctx, send, template, reason)
    return _fail(ctx, send, reason)


def rendition_of(profile: HandsetProfile, message: OutgoingMessage) -> str:
    """What the handset is sent (for mmsapi-admin trace): profile, then each part."""
    parts = ", ".join(f"{p.content_type} {len(p.data) / 1024:.1f} KB" for p in message.parts)
    return f"{profile.profile_id}: {parts or 'no parts'}; {message.air_bytes()} bytes on the air"


def _sent_as_mms(ctx: Context, send: Send, message_id: str | None) -> str:
    send.status, send.sent_as = SendStatus.SENT, "MMS"
    send.carrier_message_id = message_id or f"mm7-{uuid.uuid4().hex}"
    _record_sent(ctx, send, send_postback(send, "N101", SENT, sent_as="MMS"))
    return "sent as MMS"


def submit_mm7(send: Send, message: OutgoingMessage, transaction_id: str) -> mm7.SubmitResult:
    """One SubmitReq for a send. A retried submission carries the same TransactionID."""
    settings = get_settings()
    body, content_type = mm7.build_submit_req(
        message,
        recipient=send.to,
        sender=send.sender,
        vasp_id=settings.mm7_vasp_id,
        vas_id=settings.mm7_vas_id,
        service_code=send.service_id,
        transaction_id=transaction_id,
        version="5.3.0" if settings.mm7_version == "5.3.0" else "6.8.0",
        part_encoding="base64" if settings.mm7_part_encoding == "base64" else "binary",
    )
    return submit(
        settings.mm7_url,
        body,
        content_type,
        username=settings.mm7_username,
        password=settings.mm7_password,
        timeout=settings.mm7_timeout,
    )


def _fallback(ctx: Context, send: Send, template: Template, reason: str) -> str:
    """Fallback SMS: the text plus a link to the hosted page (docs/hosted-page.md#fallback-sms)."""
    if template.disable_fallback_sms or not send.fallback_sms_text:
        return _fail(ctx, send, f"{reason}; fallback SMS is disabled")
    text = fallback_text_for(send)  # merge tags filled, as the MMS's texts are
    if not template.disable_fallback_sms_link:
        text = f"{text} {_view_link(send)}"
    try:
        message_id = ctx.sms.send(send.to, send.sender, text)
    except SmsRefused as exc:
        return _fail(ctx, send, f"{reason}; fallback SMS refused: {exc}")
    send.status, send.sent_as, send.carrier_message_id = SendStatus.SENT, "SMS", message_id
    _record_sent(ctx, send, send_postback(send, "N101", SENT, sent_as="SMS", details=reason))
    return "sent as SMS"


def _fail(ctx: Context, send: Send, reason: str) -> str:
    send.status = SendStatus.FAILED
    ctx.sends.save(send, postback=send_postback(send, "E101", FAILED, details=reason))
    return "failed"


def retry_delay(attempt: int) -> int:
    """Seconds before attempt `attempt + 1`: doubling from settings.send_retry_seconds."""
    first = get_settings().send_retry_seconds
    return int(min(12 * 3600, first * 2 ** max(0, attempt - 1)))


def give_up(ctx: Context, send_id: int, reason: str) -> str:
    """The last attempt failed too: tell the customer (E999) instead of going quiet."""
    send = ctx.sends.get(send_id)
    if send is None or send.status is not SendStatus.QUEUED:
        return "not queued"
    send.status = SendStatus.FAILED
    details = f"gave up after retries: {reason}"
    postback = send_postback(send, "E999", FAILED, details=details)
    ctx.sends.save(send, expected=SendStatus.QUEUED, postback=postback)
    return "gave up"


def _view_link(send: Send) -> str:
    # The hosted page's module (its renderer, MO links) loads only for a send that links.
    from mmsapi.services.view import view_link

    return view_link(send)
