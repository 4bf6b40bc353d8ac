"""Every message reaches an end: settle what is past its deadline, or dead-lettered.

Each send and template under way carries a deadline (mmsapi/deadlines.py) in a sparse
index. SweeperFunction runs on a schedule and settles what is still under way past it,
with the final state and postback the documents give:

- a template still encoding -> failed, E002/E003 (a sendMMS template: its send E012/E013);
- a sendMMS send still waiting -> queued if its template is ready, else E012/E013;
- a send queued, submitting or discovering -> failed, E999 (queue processing error; a
  discovering send is past its DDM's timeout, whose message never moved it on);
- a send sent whose delivery report never came (settings.report_wait_days) -> failed,
  E102 "Message Sent/Expired" (a fallback SMS: E202), as a carrier reports an expiry.

It also consumes the send dead-letter queue: a send whose queue message ran out of
attempts ends with E999 at once instead of at its deadline.

Every write is conditional on the status and the deadline the sweeper read, so a
worker that moved the message on meanwhile wins. The index is eventually consistent:
a record it shows late is settled on a later run, and one it still shows after it
ended is re-read and left alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Final

from mmsapi.deadlines import SEND_FINAL
from mmsapi.models import SendStatus, TemplateStatus, utcnow
from mmsapi.observability import logger, message_context, send_ids, tag, template_ids
from mmsapi.services.announce import (
    FAILURE_CODES,
    SEND_FAILURE_CODES,
    failure_postback,
    send_postback,
)
from mmsapi.services.context import Context
from mmsapi.services.encode import release_waiting_send, unfinished_media
from mmsapi.settings import get_settings
from mmsapi.store.outbox import Postback
from mmsapi.tracking import tracking_id

# Records settled per table and run: a backlog is worked off over several runs, each
# well within the function's timeout.
SWEEP_LIMIT: Final = 200
# The sends index is read again while a round moved something on (settled it, or
# looked at it before its deadline: deadlines.index_key), so sends at their first look
# never take the places of sends past their deadline; at most this many rounds a run,
# and none begun with less than ROUND_SECONDS of the function's time left.
MAX_ROUNDS: Final = 20
ROUND_SECONDS: Final = 20.0
SEND_MOVED: Final = frozenset({"failed", "released", "looked at later"})
SEND_SETTLED: Final = frozenset({"failed", "released"})
FAILED: Final = "Message Failed"
TOO_LONG: Final = "delivery did not finish in time"
QUEUE: Final = "queue"
GIVEN_UP: Final = {QUEUE: "delivery failed on every attempt"}
ENCODING_TOO_LONG: Final = "encoding did not finish in time"
EXPIRED: Final = "Message Sent/Expired"  # the E102 wording (docs/postbacks.md#n102-e102)
EXPIRED_CODES: Final = {"MMS": "E102", "SMS": "E202"}
TEMPLATE_GONE: Final = "the MMS was deleted before its encoding finished"


def sweep(
    ctx: Context,
    now: int,
    limit: int = SWEEP_LIMIT,
    seconds_left: Callable[[], float] | None = None,
) -> dict[str, int]:
    """Settle every record past its deadline at `now` (epoch seconds); outcome counts.
    `seconds_left`: the function's remaining time (no new round of sends below
    ROUND_SECONDS)."""
    outcomes: Counter[str] = Counter()
    # Templates first: a failed sendMMS template fails its waiting send in the same run.
    for mms_id in ctx.templates.overdue(now, limit):
        with message_context(action="sweep", mms_id=mms_id):  # each record's own ids
            outcomes[f"template {settle_template(ctx, mms_id, now)}"] += 1
    settled = 0
    for _ in range(MAX_ROUNDS):
        if seconds_left is not None and seconds_left() < ROUND_SECONDS:
            break
        moved = 0
        for send_id in ctx.sends.overdue(now, limit):
            with message_context(action="sweep", send_id=send_id):
                outcome = settle_send(ctx, send_id, now)
            outcomes[f"send {outcome}"] += 1
            moved += outcome in SEND_MOVED
            settled += outcome in SEND_SETTLED
        # Nothing moved: what the index still shows is stale (it lags on AWS).
        if not moved or settled >= limit:
            break
    return dict(outcomes)


def settle_template(ctx: Context, mms_id: int, now: int) -> str:
    template = ctx.templates.get(mms_id)
    if template is not None:
        tag(**template_ids(template))
    due = ctx.templates.settle_by(mms_id)
    if template is None or due is None:
        return "final"
    if due > now:
        return "not due"
    expected = template.status
    postback: Postback | None = None
    if expected is TemplateStatus.ENCODING:
        kind, url = unfinished_media(template)
        template.status = TemplateStatus.FAILED
        template.failure_code = FAILURE_CODES[kind][0]
        if template.single_send_id is None:  # a sendMMS template is told by its send
            postback = failure_postback(template, kind, url)
    # Anything else (a delete that stopped half-way) just leaves the index, untold.
    if not ctx.templates.settle(template, expected, due, postback):
        return "changed"
    logger.warning("template settled", extra={"mms_id": mms_id, "reason": ENCODING_TOO_LONG})
    release_waiting_send(ctx, template)
    return "failed"


def settle_send(ctx: Context, send_id: int, now: int, *, given_up_by: str = "") -> str:
    """End one send past its deadline, or given up by its owner: the send queue (its
    message was dead-lettered, QUEUE)."""
    send = ctx.sends.get(send_id)
    if send is not None:
        tag(**send_ids(send))
    due = ctx.sends.settle_by(send_id)
    if send is None or send.status in SEND_FINAL:
        return "final"
    if given_up_by:
        # A waiting send is the encoding's; a sent one waits for its report; a claim
        # still fresh belongs to a worker that may be on it; a discovering send waits for
        # its DDM's report or timeout message (a dead-lettered one: its deadline ends it).
        claimed_for = (utcnow() - send.updated_at).total_seconds()
        if (
            send.status in (SendStatus.WAITING, SendStatus.SENT)
            or send.status is SendStatus.DISCOVERING
            or (
                send.status is SendStatus.SUBMITTING
                and claimed_for <= get_settings().send_claim_seconds
            )
        ):
            return "not its own"
    elif due is None:
        return "not due"
    elif due > now:
        # Found at its first look (deadlines.index_key): looked at again when it is due.
        return "looked at later" if ctx.sends.look_later(send_id, send.status, due) else "not due"
    expected = send.status
    send.status = SendStatus.FAILED
    if expected is SendStatus.WAITING:
        template = ctx.templates.get(send.mms_id)
        if template is not None and template.status is TemplateStatus.READY:
            send.status = SendStatus.WAITING
            release_waiting_send(ctx, template)
            return "released"
        kind, url = unfinished_media(template)
        fields = {"tracking-id": tracking_id(send.send_id), "to": send.to, "from": send.sender}
        if template is not None:
            postback = failure_postback(template, kind, url, fields)
        else:
            code = SEND_FAILURE_CODES[kind]
            postback = send_postback(send, code, FAILED, details=TEMPLATE_GONE)
    elif expected is SendStatus.SENT:
        days = get_settings().report_wait_days
        code = EXPIRED_CODES.get(send.sent_as, "E102")
        details = f"no delivery report within {days} days"
        postback = send_postback(send, code, EXPIRED, details=details)
    else:
        details = GIVEN_UP.get(given_up_by, TOO_LONG)
        postback = send_postback(send, "E999", FAILED, details=details)
    if not ctx.sends.settle(send, expected, due, postback):
        return "changed"
    logger.warning(
        "send settled",
        extra={"send": send_id, "was": expected.value, "code": postback.detail["code"]},
    )
    return "failed"
