"""Carrier delivery reports: POST /carrier/mm7/{token} (MM7), /carrier/sms/{token} (JSON),
and AWS End User Messaging SMS events through SNS."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import TYPE_CHECKING, Any

from mmsapi.carrier.mm7 import MM7Error
from mmsapi.observability import count, logger, message_context, metrics, tracer
from mmsapi.services.context import context
from mmsapi.services.report import mm7_request, sms_report, sns_message
from mmsapi.services.sms_inbound import MalformedSms
from mmsapi.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def _answer(status: int, body: str | bytes, content_type: str = "text/plain") -> dict[str, Any]:
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return {"statusCode": status, "headers": {"Content-Type": content_type}, "body": text}


def _sns(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Fallback SMS receipts and SMS from phones, from AWS End User Messaging through
    SNS. A malformed message is logged (its id, not its text) and counted, never retried."""
    settled = 0
    for record in records:
        with message_context(action="report"):  # one record's ids, not the next one's
            # Only reading the message is caught: a failure of ours (a table, a record
            # that does not decode) raises, for Lambda's retries and then the DLQ.
            try:
                sns = record["Sns"]
                message = json.loads(sns["Message"])
                published = str(sns.get("Timestamp") or "")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                _malformed(record, exc)
                continue
            try:
                settled += sns_message(context(), message, published)
            except MalformedSms as exc:
                _malformed(record, exc)
    return {"settled": settled}


def _malformed(record: dict[str, Any], exc: Exception) -> None:
    sns = record.get("Sns")
    sns_id = str(sns.get("MessageId", "") if isinstance(sns, dict) else "")[:100]
    logger.warning("not an SMS event", extra={"sns_id": sns_id, "reason": str(exc)[:200]})
    count("SnsMessagesMalformed")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    with message_context(action="report"):
        return _handle(event)


def _handle(event: dict[str, Any]) -> dict[str, Any]:
    if "Records" in event:
        return _sns(event["Records"])
    params = event.get("pathParameters") or {}
    expected = get_settings().carrier_report_token
    # Bytes, so that a token in any script is just a wrong token (compare_digest raises
    # TypeError on non-ASCII str); surrogatepass: JSON events may hold lone surrogates.
    given = str(params.get("token") or "").encode("utf-8", "surrogatepass")
    if not expected or not hmac.compare_digest(given, expected.encode("utf-8")):
        return _answer(403, "forbidden")
    raw = event.get("body") or ""
    try:
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    except (binascii.Error, ValueError):
        return _answer(400, "unreadable body")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if params.get("channel") == "mm7":
        try:
            # Where the MMSC reached us: MO file links (services/inbound.py) point there.
            host = headers.get("host") or event.get("requestContext", {}).get("domainName", "")
            base_url = f"{headers.get('x-forwarded-proto', 'https')}://{host}"
            status, answer = mm7_request(context(), body, headers, base_url)
        except MM7Error as exc:
            logger.warning("not a delivery report", extra={"reason": str(exc)})
            return _answer(400, "not an MM7 DeliveryReportReq")
        return _answer(status, answer, "text/xml; charset=utf-8")
    try:
        report = json.loads(body)
        known = sms_report(context(), str(report["message_id"]), report["status"] == "delivered")
    except (ValueError, KeyError, TypeError):
        return _answer(400, 'expected {"message_id": ..., "status": "delivered"|"failed"}')
    return _answer(200 if known else 404, "ok" if known else "unknown message")
