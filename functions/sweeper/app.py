"""Every message reaches an end: the schedule's sweep, and the send dead-letter queue.

EventBridge schedule (every 5 minutes) -> settle every send and template past its
deadline (services/sweep.py), as of the event's time.
SQS records of SendDLQ -> each send whose queue message ran out of attempts ends (E999).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from mmsapi.observability import logger, message_context, metrics, tracer
from mmsapi.services.context import context
from mmsapi.services.sweep import QUEUE, settle_send, sweep

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext


@cache
def _processor() -> BatchProcessor:
    # Dead letters are rare: the schedule's invocations never load the batch utility.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _dead_letter(record: SQSRecord) -> None:
    with message_context(action="dead-letter"):  # this record's ids only
        _settle_dead_letter(record)


def _settle_dead_letter(record: SQSRecord) -> None:
    try:
        send_id = int(json.loads(record.body)["send_id"])
    except (ValueError, KeyError, TypeError):
        # No send to end: logged for the operator, then dropped (SendDLQAlarm fired).
        logger.error("unreadable dead letter", extra={"message_id": record.message_id})
        return
    outcome = settle_send(context(), send_id, int(time.time()), given_up_by=QUEUE)
    logger.info("dead letter", extra={"send": send_id, "outcome": outcome})


def _scheduled_at(event: dict[str, Any]) -> int:
    """The schedule's tick ("time" of the event), else now."""
    given = event.get("time")
    if isinstance(given, str):
        return int(datetime.fromisoformat(given.replace("Z", "+00:00")).timestamp())
    return int(time.time())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        from aws_lambda_powertools.utilities.batch import process_partial_response

        answer: dict[str, Any] = dict(
            process_partial_response(
                event=event,
                record_handler=_dead_letter,
                processor=_processor(),
                context=lambda_context,
            )
        )
        return answer
    seconds_left = lambda_context.get_remaining_time_in_millis  # in ms: scaled below
    outcomes = sweep(context(), _scheduled_at(event), seconds_left=lambda: seconds_left() / 1000)
    logger.info("swept", extra={"outcomes": outcomes})
    return outcomes
