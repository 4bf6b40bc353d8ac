"""Device Discovery Message (docs/device-discovery.md): a short text MMS sent first to
learn the handset, before the real MMS. No workflow: the send waits in `discovering`.

deliver() (a send queue message) -> discover(): the send queued -> discovering, its
    timeout message put on the send queue (delayed), then the DDM submitted
the DDM's delivery report: report.mm7_report() -> learnt()      } whichever comes first
its timeout message, back on the send queue: time_out()          } moves the send on
moved on: the send queued again, its "queue send" outbox item in the same transaction,
    conditional on `discovering`: only one of them ever wins, so one MMS goes
"""

from __future__ import annotations

import time
import uuid

from mmsapi.carrier import mm7
from mmsapi.carrier.message import MessagePart, OutgoingMessage, SlidePlan
from mmsapi.carrier.mm7_client import CarrierUnavailable
from mmsapi.models import Send, SendStatus
from mmsapi.observability import logger, send_ids, tag
from mmsapi.services.announce import send_postback
from mmsapi.services.context import Context
from mmsapi.services.deliver import (
    OPTED_OUT,
    TRANSIENT,
    RetryLater,
    deliver,
    opted_out,
    submit_mm7,
)
from mmsapi.store.outbox import Postback
from mmsapi.text import clean_subject

DDM_DETAILS = "Device Discovery Message"
DISCOVERING = "discovering the handset"


def discovery_message(send: Send) -> OutgoingMessage:
    assert send.ddm is not None
    text = MessagePart(
        content_id="ddm.txt",
        content_type="text/plain; charset=utf-8",
        filename="ddm.txt",
        data=send.ddm.text.encode("utf-8"),
    )
    return OutgoingMessage(
        subject=clean_subject(send.ddm.subject, 80),
        slides=[SlidePlan(duration=10, text="ddm.txt")],
        parts=[text],
    )


def discover(ctx: Context, send: Send) -> str:
    """Send the DDM of a queued send; the send then waits for its report or timeout."""
    assert send.ddm is not None
    if opted_out(send):  # STOP since the send was accepted: no DDM, no MMS
        send.status = SendStatus.FAILED
        postback = send_postback(send, "E101", "Message Failed", details=OPTED_OUT)
        ctx.sends.save(send, expected=SendStatus.QUEUED, postback=postback)
        return "failed: opted out"
    wait = send.ddm.timeout_minutes * 60
    send.status = SendStatus.DISCOVERING
    send.ddm_until = int(time.time()) + wait
    if not ctx.sends.save(send, expected=SendStatus.QUEUED):
        return "claimed elsewhere"
    try:
        # Before the DDM goes: once it is out, its wait always has an end.
        ctx.send_queue.enqueue_ddm_timeout(send.send_id, send.ddm_until, wait)
        result = submit_mm7(send, discovery_message(send), f"mmsapi-ddm-{send.send_id}")
    except CarrierUnavailable as exc:
        _unclaim(ctx, send)  # the send queue tries again (its timeout message is stale)
        raise RetryLater(str(exc)) from exc
    except TRANSIENT:
        _unclaim(ctx, send)
        raise
    except Exception as exc:  # an answer that cannot be read, or lost: no second DDM
        logger.warning("DDM not confirmed", extra={"send": send.send_id, "reason": str(exc)})
        return _go_on_now(ctx, send, None)
    action = mm7.action_for(result.status_code)
    if action is mm7.Action.RETRY:
        _unclaim(ctx, send)
        raise RetryLater(f"MM7 {result.status_code} {result.status_text}")
    if action is not mm7.Action.OK:
        # Nothing to wait for: the MMS goes at once with what the cache knows.
        return _go_on_now(
            ctx, send, send_postback(send, "E501", "Message Failed", details=DDM_DETAILS)
        )
    send.carrier_message_id = result.message_id or f"mm7-{uuid.uuid4().hex}"
    postback = send_postback(send, "N501", "Message Sent", sent_as="MMS", details=DDM_DETAILS)
    # Its report must find the send at once. Not written (AWS failing, or the wait is over
    # already): the timeout message moves the send on; the DDM's report finds nothing.
    try:
        ctx.sends.save(
            send, expected=SendStatus.DISCOVERING, carrier_message=True, postback=postback
        )
    except TRANSIENT:
        logger.exception("DDM sent but not recorded", extra={"send": send.send_id})
    return DISCOVERING


def learnt(ctx: Context, send: Send, delivered: bool, handset: str | None) -> None:
    """The DDM's delivery report came: tell the customer, queue the MMS (the handset
    cache knows what the report taught). A late or repeated report finds the send moved
    on and writes nothing."""
    if delivered:
        postback = send_postback(
            send, "N502", "Message Sent/Delivered", details=DDM_DETAILS, handset=handset
        )
    else:
        postback = send_postback(send, "E502", "Message Sent/Failed", details=DDM_DETAILS)
    if not move_on(ctx, send, postback):
        logger.info("DDM report after the send moved on", extra={"send": send.send_id})


def time_out(ctx: Context, send_id: int, until: int) -> str:
    """A DDM's timeout message: the send goes on with generic settings if it still waits
    at `until` (epoch seconds); a wait longer than SQS's longest delay is re-queued."""
    send = ctx.sends.get(send_id)
    if send is not None:
        tag(**send_ids(send))
    if send is None or send.status is not SendStatus.DISCOVERING or send.ddm_until != until:
        return "discovery over"  # the report came, or a stale timer of an earlier try
    left = until - int(time.time())
    if left > 0:
        ctx.send_queue.enqueue_ddm_timeout(send_id, until, left)
        return "waiting on"
    return "timed out" if move_on(ctx, send, None) else "discovery over"


def move_on(ctx: Context, send: Send, postback: Postback | None) -> bool:
    """Discovery over: the send queued again with its "queue send" outbox item (and the
    DDM's postback) in one transaction, only if it still is `discovering`."""
    send.status = SendStatus.QUEUED
    send.discovered = True
    send.ddm_until = 0
    send.carrier_message_id = ""  # the real MMS gets its own (the DDM's is told above)
    return ctx.sends.save(send, expected=SendStatus.DISCOVERING, postback=postback, queue=True)


def _go_on_now(ctx: Context, send: Send, postback: Postback | None) -> str:
    """No report to wait for: the MMS goes in this invocation (the send queue's message
    retries it if it cannot)."""
    send.status = SendStatus.QUEUED
    send.discovered = True
    send.ddm_until = 0
    if not ctx.sends.save(send, expected=SendStatus.DISCOVERING, postback=postback):
        return "claimed elsewhere"
    return deliver(ctx, send.send_id)


def _unclaim(ctx: Context, send: Send) -> None:
    send.status = SendStatus.QUEUED
    send.ddm_until = 0
    ctx.sends.save(send, expected=SendStatus.DISCOVERING)
