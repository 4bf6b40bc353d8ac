"""API Gateway (HTTP API, payload 2.0) -> one XML answer for every MMS API action."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from mmsapi.budget import Budget
from mmsapi.observability import logger, metrics, tracer
from mmsapi.services.api import handle
from mmsapi.services.context import context

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

XML_HEADERS = {"Content-Type": "application/xml; charset=utf-8", "Cache-Control": "no-store"}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    # The work stops in time to answer in XML before the function (and the gateway) time out.
    budget = Budget.from_remaining_ms(lambda_context.get_remaining_time_in_millis())
    raw = event.get("body") or ""
    try:
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    except (binascii.Error, ValueError):
        body = b""  # answered E100 like any request without a document
    query = event.get("queryStringParameters") or {}
    source_ip = event.get("requestContext", {}).get("http", {}).get("sourceIp", "")
    answer = handle(context(), body, query, source_ip, budget)
    return {"statusCode": 200, "headers": XML_HEADERS, "body": answer.decode("utf-8")}
