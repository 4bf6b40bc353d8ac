"""Sending an MM7 SubmitReq to the MMSC over HTTP (basic auth), through the network guard.

What comes back, and what the caller does with it:

- a SubmitResult: the MMSC answered in MM7, whether SubmitRsp or refusal;
  `result.action` (mm7.STATUS_TABLE) says ok / retry / fallback / fail.
  SOAP 1.1 sends faults with HTTP 500, so a 500 whose body is an MM7 answer
  is read like a 200; so is any 4xx that carries one. A 401/403 without one
  becomes 4001 (improper identification: our credentials), another 4xx 2000.
- CarrierUnavailable: no answer (connection, timeout, refused by the guard: the
  operator's URL may be RFC 1918 private, never link-local or metadata),
  HTTP 429, or a 5xx without an MM7 body (a proxy or a load balancer spoke).
  Transient: the caller retries with back-off.
- MM7Error: a 2xx the caller cannot read. The MMSC may have accepted the
  message, so a blind retry could send it twice: the caller decides.
"""

from __future__ import annotations

import base64
from typing import Final

from mmsapi.carrier.mm7 import MM7Error, SubmitResult, parse_submit_rsp
from mmsapi.media.guard import NetworkError, post_bytes
from mmsapi.settings import Settings, get_settings

# A SubmitRsp is a few hundred bytes; anything beyond this is not one.
MAX_RESPONSE_BYTES: Final = 1_048_576
USER_AGENT: Final = "mmsapi-mm7/1.0"


class CarrierUnavailable(Exception):  # noqa: N818 - the name the callers know
    """The carrier could not be reached or answered "try later"; retry with back-off."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SubmitUnconfirmed(CarrierUnavailable):
    """The SubmitReq reached the MMSC but its answer did not come back (a read timeout,
    a connection dropped mid-exchange): the MMSC may have taken it, so it is not sent
    again (a resend could deliver the message twice)."""


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _without_soap(status: int, reason: str) -> SubmitResult:
    """An HTTP error that carries no MM7 answer, in MM7 terms."""
    if status in (401, 403):
        return SubmitResult(status_code=4001, status_text=f"HTTP {status} {reason}".strip())
    return SubmitResult(status_code=2000, status_text=f"HTTP {status} {reason}".strip())


def submit(
    url: str,
    body: bytes,
    content_type: str,
    *,
    username: str,
    password: str,
    soap_action: str = "",
    timeout: float,
    settings: Settings | None = None,
) -> SubmitResult:
    """POST a SubmitReq (body and Content-Type from mm7.build_submit_req) to the MMSC."""
    settings = settings or get_settings()
    headers = {
        "Content-Type": content_type,
        # SOAP 1.1 requires the header; "" means "the request URI says it all".
        "SOAPAction": f'"{soap_action}"',
        "User-Agent": USER_AGENT,
    }
    if username:
        headers["Authorization"] = _basic(username, password)
    try:
        answer = post_bytes(
            url,
            body,
            headers,
            # The operator's MMSC may sit on a private network (a VPN to the carrier);
            # loopback only where the local runtime allows it (its simulated MMSC).
            allow_private=True,
            allow_loopback=settings.allow_loopback_media,
            timeout=timeout,
            max_response_bytes=MAX_RESPONSE_BYTES,
        )
    except NetworkError as exc:
        # The guard chains the cause only for failures after the connection was made
        # (the request was sent, or partly): a failure to connect has none.
        lost = exc.__cause__ is not None
        kind = SubmitUnconfirmed if lost else CarrierUnavailable
        raise kind(f"MM7 submit to {url} failed: {exc.reason}") from exc
    status, reason = answer.status, answer.reason
    if status == 429 or status > 500:
        raise CarrierUnavailable(f"MMSC answered HTTP {status} {reason}".strip())
    try:
        return parse_submit_rsp(answer.body, answer.content_type or "text/xml")
    except MM7Error:
        if 200 <= status < 300:
            raise
        if status >= 500:
            raise CarrierUnavailable(f"MMSC answered HTTP {status} {reason}".strip()) from None
        return _without_soap(status, reason)
