"""The event bus. Only the outbox relay (services/outbox.py) publishes on it: every other
writer puts its postbacks in the outbox, in the transaction of its state change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.outbox import Postback

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

SOURCE: Final = "mmsapi"
# PutEvents takes at most 10 entries a call.
MAX_ENTRIES: Final = 10


class EventPublisher:
    def __init__(self, bus: str | None = None) -> None:
        self.bus = bus or get_settings().event_bus_name

    def publish(self, postbacks: Sequence[Postback]) -> list[str]:
        """Publish up to MAX_ENTRIES postbacks in one PutEvents; the ids of those that
        failed (PutEvents answers per entry: FailedEntryCount counts the failed ones).

        DomainError when the whole call fails.
        """
        if len(postbacks) > MAX_ENTRIES:
            raise ValueError(f"at most {MAX_ENTRIES} events per PutEvents")
        if not postbacks:
            return []
        entries: list[PutEventsRequestEntryTypeDef] = [
            {
                "Source": SOURCE,
                "DetailType": postback.detail_type,
                "Detail": postback.body(),
                "EventBusName": self.bus,
            }
            for postback in postbacks
        ]
        try:
            answer = aws.events().put_events(Entries=entries)
        except ClientError as exc:
            raise DomainError(f"event publish failed: {exc}") from exc
        if not answer.get("FailedEntryCount"):
            return []
        results = answer.get("Entries", [])
        # Entries answer in request order; an entry with an ErrorCode (or none at all) failed.
        return [
            postback.id
            for index, postback in enumerate(postbacks)
            if index >= len(results)
            or results[index].get("ErrorCode")
            or not results[index].get("EventId")
        ]
