"""The event bus: every fact a customer is told about is published here first."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws

SOURCE = "mmsapi"


class EventPublisher:
    def __init__(self, bus: str | None = None) -> None:
        self.bus = bus or get_settings().event_bus_name

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        try:
            answer = aws.events().put_events(
                Entries=[
                    {
                        "Source": SOURCE,
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail, separators=(",", ":")),
                        "EventBusName": self.bus,
                    }
                ]
            )
        except ClientError as exc:
            raise DomainError(f"event publish failed: {exc}") from exc
        if answer.get("FailedEntryCount"):
            raise DomainError(f"event publish failed: {answer['Entries']}")
