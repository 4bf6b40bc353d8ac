"""Delivery: the send queue (SQS) and the Device Discovery workflow's two steps.

SQS records -> deliver each send (MM7 to the carrier, or fallback SMS).
{"step": "discover" | "deliver" | "settle", "send_id"} from statemachine/ddm.asl.json ->
send the Device Discovery Message, the MMS once the handset is known, or (the workflow
failed) end the send with E999.
"""

from __future__ import annotations

import json
import time
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
    send_id = int(json.loads(record.body)["send_id"])
    with message_context(action="deliver", send_id=send_id):
        _deliver(record, send_id)


def _deliver(record: SqsRecord, send_id: int) -> None:
    ctx = context()
    try:
        outcome = deliver(ctx, send_id)
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


def _step(event: dict[str, Any]) -> dict[str, Any]:
    send_id = int(event["send_id"])
    with message_context(action=f"ddm-{event['step']}", send_id=send_id):
        return _run_step(event, send_id)


def _run_step(event: dict[str, Any], send_id: int) -> dict[str, Any]:
    # Only sends to unknown handsets take these steps: their modules load on first use.
    from mmsapi.services.ddm import after_discovery, discover
    from mmsapi.services.sweep import WORKFLOW, settle_send

    if event["step"] == "discover":
        outcome = discover(context(), send_id, str(event["task_token"]))
    elif event["step"] == "settle":
        # The workflow failed (its Catch): the send ends with E999 instead of staying put.
        outcome = settle_send(context(), send_id, int(time.time()), given_up_by=WORKFLOW)
    else:
        outcome = after_discovery(context(), send_id)
    return {"send_id": send_id, "outcome": outcome}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> BatchResponse | dict[str, Any]:
    # Send-time re-encoding stops in time for the send to end within this invocation.
    with reencode_within(lambda_context.get_remaining_time_in_millis()):
        if "step" in event:
            return _step(event)
        # A failed record is reported, not raised, even when it is the whole batch.
        return process_batch(event, _one)
