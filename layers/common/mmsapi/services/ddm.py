"""Device Discovery Message (docs/device-discovery.md): the steps the discovery workflow runs.

deliver() ──start──> statemachine/ddm.asl.json
    SendDiscoveryMessage: discover()  (waits on its task token, up to ddm-message-timeout)
        ... the DDM's delivery report: report.mm7_report() -> learnt() resumes it
    SendMessage: after_discovery() -> deliver(discovered=True) with the learnt handset
"""

from __future__ import annotations

import uuid

from mmsapi.carrier import mm7
from mmsapi.carrier.message import MessagePart, OutgoingMessage, SlidePlan
from mmsapi.carrier.mm7_client import CarrierUnavailable
from mmsapi.models import Send, SendStatus
from mmsapi.observability import send_ids, tag
from mmsapi.services.announce import announce_send, send_postback
from mmsapi.services.context import Context
from mmsapi.services.deliver import OPTED_OUT, RetryLater, deliver, opted_out, submit_mm7
from mmsapi.text import clean_subject

DDM_DETAILS = "Device Discovery Message"


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


def discover(ctx: Context, send_id: int, task_token: str) -> str:
    """Send the DDM; the workflow then waits until learnt() or its timeout."""
    send = ctx.sends.get(send_id)
    if send is not None:
        tag(**send_ids(send))
    if send is None or send.status is not SendStatus.DISCOVERING or send.ddm is None:
        return "not discovering"
    if opted_out(send):  # STOP since the send was accepted: no DDM, no MMS
        send.status = SendStatus.FAILED
        postback = send_postback(send, "E101", "Message Failed", details=OPTED_OUT)
        if ctx.sends.save(send, expected=SendStatus.DISCOVERING, postback=postback):
            ctx.discovery.resume(task_token, {"handset": None})  # ends: not discovering
        return "failed: opted out"
    try:
        result = submit_mm7(send, discovery_message(send), f"mmsapi-ddm-{send.send_id}")
    except CarrierUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    action = mm7.action_for(result.status_code)
    if action is mm7.Action.RETRY:
        raise RetryLater(f"MM7 {result.status_code} {result.status_text}")
    if action is not mm7.Action.OK:
        announce_send(ctx, send, "E501", "Message Failed", details=DDM_DETAILS)
        # Nothing to wait for: go on with generic settings at once.
        ctx.discovery.resume(task_token, {"handset": None})
        return "DDM refused"
    send.carrier_message_id = result.message_id or f"mm7-{uuid.uuid4().hex}"
    send.ddm_task_token = task_token
    postback = send_postback(send, "N501", "Message Sent", sent_as="MMS", details=DDM_DETAILS)
    # Its report must find the send at once.
    ctx.sends.save(send, carrier_message=True, postback=postback)
    return "DDM sent"


def learnt(ctx: Context, send: Send, delivered: bool, handset: str | None) -> None:
    """The DDM's delivery report came: tell the customer, let the workflow go on."""
    token = send.ddm_task_token
    send.ddm_task_token = ""
    if delivered:
        postback = send_postback(
            send, "N502", "Message Sent/Delivered", details=DDM_DETAILS, handset=handset
        )
    else:
        postback = send_postback(send, "E502", "Message Sent/Failed", details=DDM_DETAILS)
    send.carrier_message_id = ""  # the real MMS gets its own (the DDM's is told above)
    if not ctx.sends.save(send, expected=SendStatus.DISCOVERING, postback=postback):
        return  # the wait ran out meanwhile and the MMS is under way: nothing to resume
    if token:
        ctx.discovery.resume(token, {"handset": handset})


def after_discovery(ctx: Context, send_id: int) -> str:
    """Discovery over (learnt or timed out): send the MMS with what the cache knows now."""
    send = ctx.sends.get(send_id)
    if send is not None:
        tag(**send_ids(send))
    if send is not None and send.status is SendStatus.QUEUED and send.discovered:
        # A retry of this step after the one before failed: the queue takes it from here
        # (the claim keeps a second message from sending it twice).
        ctx.send_queue.enqueue(send_id)
        return "queued for a retry"
    if send is None or send.status is not SendStatus.DISCOVERING:
        return "not discovering"
    send.status = SendStatus.QUEUED
    send.ddm_task_token = ""
    send.discovered = True
    if not ctx.sends.save(send, expected=SendStatus.DISCOVERING):
        return "claimed elsewhere"
    try:
        return deliver(ctx, send_id, discovered=True)
    except Exception:  # RetryLater (the carrier is down), or AWS failing
        # The send queue retries it with back-off, then E999: it is never left queued
        # with no message. If this fails too, the workflow retries this step.
        ctx.send_queue.enqueue(send_id)
        return "queued for a retry"
