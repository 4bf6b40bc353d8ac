"""Step Functions task: encode one audio or video item of a template (ffmpeg layer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsapi.observability import encoding_ids, logger, message_context, metrics, tracer
from mmsapi.services.context import context
from mmsapi.services.encode import transcode_item

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    with message_context(action="transcode", **encoding_ids(event)):
        return transcode_item(context().media, event)
