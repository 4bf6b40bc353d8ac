"""Delivery: the send queue (SQS).

{"send_id"} -> deliver the send (MM7 to the carrier, or fallback SMS), or first send its
Device Discovery Message (services/ddm.py).
{"send_id", "ddm_until"} -> a DDM's timeout (delayed): the send goes on if it still waits.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mmsapi.batch import BatchResponse, SqsRecord, process_batch
from mmsapi.observability import logger, message_context, metrics, tracer
from mmsapi.services.adapt import reencode_within
from mmsapi.services.context import context
from mmsapi.services.deliver import deliver, give_up, retry_delay
from mmsapi.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def _one(record: SqsRecord) -> None:
    body = json.loads(record.body)
    send_id = int(body["send_id"])
    if "ddm_until" in body:
        with message_context(action="ddm-timeout", send_id=send_id):
            _deliver(record, send_id, int(body["ddm_until"]))
        return
    with message_context(action="deliver", send_id=send_id):
        _deliver(record, send_id)


def _deliver(record: SqsRecord, send_id: int, ddm_until: int | None = None) -> None:
    ctx = context()
    try:
        outcome = deliver(ctx, send_id) if ddm_until is None else _time_out(send_id, ddm_until)
    except Exception as exc:  # RetryLater, or a fault a later attempt may not meet
        attempt = record.receive_count
        if attempt >= get_settings().send_max_attempts:
            # The last attempt: the send ends here (E999), not in the dead-letter queue.
            outcome = give_up(ctx, send_id, str(exc) or type(exc).__name__)
        else:
            # Reported as failed, the message comes back after a doubling wait.
            ctx.send_queue.retry_later(record.receipt_handle, retry_delay(attempt))
            raise
    logger.info("delivered", extra={"message_id": record.message_id, "outcome": outcome})


def _time_out(send_id: int, until: int) -> str:
    # Only sends to unknown handsets have a DDM: its module loads on first use.
    from mmsapi.services.ddm import time_out

    return time_out(context(), send_id, until)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> BatchResponse:
    # Send-time re-encoding stops in time for the send to end within this invocation.
    with reencode_within(lambda_context.get_remaining_time_in_millis()):
        # A failed record is reported, not raised, even when it is the whole batch.
        return process_batch(event, _one)
