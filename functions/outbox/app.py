"""OutboxFunction: the outbox table's stream -> the event bus and the send queue
(services/outbox.relay).

A batch whose publish fails reports its first unpublished record in batchItemFailures:
Lambda retries from there (bisecting, up to MaximumRetryAttempts), then sends the
records' place in the stream to OutboxDLQ; the items stay in the outbox for redrive.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsapi.observability import logger, message_context, metrics, tallied, tracer
from mmsapi.services.context import context
from mmsapi.services.outbox import relay


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    ctx = context()
    with tallied(), message_context(action="relay"):
        failed = relay(event.get("Records", []), ctx.outbox, ctx.events, ctx.send_queue)
    return {"batchItemFailures": [{"itemIdentifier": failed}] if failed else []}
