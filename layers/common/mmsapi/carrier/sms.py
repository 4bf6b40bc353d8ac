"""Fallback SMS: AWS End User Messaging in the cloud, an HTTP gateway locally."""

from __future__ import annotations

import json
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mmsapi.carrier.mm7_client import CarrierUnavailable
from mmsapi.media.guard import NetworkError, post_bytes
from mmsapi.settings import Settings, get_settings
from mmsapi.store import aws

# Refusals that no retry can change (the number cannot take this SMS).
_FINAL_ERRORS = frozenset(
    {
        "ValidationException",
        "ResourceNotFoundException",
        "AccessDeniedException",
        "ConflictException",
    }
)


class SmsRefused(Exception):  # noqa: N818 - a verdict, not a fault
    """The gateway will not send this SMS (bad number, opted out, not provisioned)."""


class SmsGateway(Protocol):
    def send(self, to: str, sender: str, text: str) -> str:
        """Send one SMS; returns the gateway's message id."""
        ...


class EndUserMessagingSms:
    """AWS End User Messaging SMS (pinpoint-sms-voice-v2) SendTextMessage."""

    def __init__(self, settings: Settings) -> None:
        self.configuration_set = settings.sms_configuration_set

    def request(self, to: str, sender: str, text: str) -> dict[str, str]:
        """SendTextMessage's parameters. A long code or toll-free number goes as a phone
        number in E.164, with its '+' (as End User Messaging names it); a short code (8
        digits at most, as MM7's ShortCode) and an id, ARN, pool or sender id as given."""
        origination = "+" + sender if sender.isdigit() and len(sender) > 8 else sender
        request = {
            "DestinationPhoneNumber": "+" + to,
            "OriginationIdentity": origination,
            "MessageBody": text,
            "MessageType": "TRANSACTIONAL",
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return request

    def send(self, to: str, sender: str, text: str) -> str:
        request = self.request(to, sender, text)
        try:
            answer = aws.sms().send_text_message(**request)  # type: ignore[arg-type]
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in _FINAL_ERRORS:
                raise SmsRefused(f"{code}: {exc}") from exc
            raise CarrierUnavailable(f"SMS gateway: {code}") from exc
        except BotoCoreError as exc:
            raise CarrierUnavailable(f"SMS gateway: {exc}") from exc
        return str(answer["MessageId"])


class HttpSms:
    """A JSON-over-HTTP gateway: {"to","from","text"} -> {"message_id"} (the local one)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, to: str, sender: str, text: str) -> str:
        body = json.dumps({"to": to, "from": sender, "text": text}).encode()
        try:
            answer = post_bytes(
                self.settings.sms_url,
                body,
                {"Content-Type": "application/json"},
                allow_private=True,  # the operator's gateway, like the MMSC, may be private
                allow_loopback=self.settings.allow_loopback_media,
                timeout=15,
                connect_timeout=5,
                read_timeout=10,
                max_response_bytes=64 * 1024,
            )
        except NetworkError as exc:
            raise CarrierUnavailable(f"SMS gateway: {exc}") from exc
        status, payload = answer.status, answer.body
        if status >= 500:
            raise CarrierUnavailable(f"SMS gateway answered HTTP {status}")
        if status != 200:
            raise SmsRefused(f"SMS gateway answered HTTP {status}: {payload[:200]!r}")
        return str(json.loads(payload)["message_id"])


def sms_gateway(settings: Settings | None = None) -> SmsGateway:
    settings = settings or get_settings()
    return HttpSms(settings) if settings.sms_url else EndUserMessagingSms(settings)
