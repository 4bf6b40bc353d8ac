"""GET /v/{token}: the hosted page a fallback SMS links to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsapi.observability import logger, message_context, metrics, tracer
from mmsapi.services.context import context
from mmsapi.services.view import render_view

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    # Presigned media URLs expire: the page must not outlive them in a cache.
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; img-src https: http:; media-src https: http:; "
        "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    token = str((event.get("pathParameters") or {}).get("token") or "")
    with message_context(action="view"):
        page = render_view(context(), token)
    headers = {**HEADERS, "Location": page.location} if page.location else HEADERS
    return {"statusCode": page.status, "headers": headers, "body": page.html}
