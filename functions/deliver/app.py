"""SQS send queue -> deliver each send (MM7 to the carrier, or fallback SMS)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsapi.observability import logger, metrics, tracer
from mmsapi.services.context import context
from mmsapi.services.deliver import deliver

processor = BatchProcessor(event_type=EventType.SQS)


def _one(record: SQSRecord) -> None:
    # A RetryLater raised here leaves the message to come back after the visibility timeout.
    outcome = deliver(context(), int(json.loads(record.body)["send_id"]))
    logger.info("delivered", extra={"message_id": record.message_id, "outcome": outcome})


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=_one, processor=processor, context=lambda_context
    )
