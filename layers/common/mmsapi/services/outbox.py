"""The outbox relay (OutboxFunction): the outbox table's stream -> the event bus.

Every postback is written to the outbox in the transaction of its state change
(store/outbox.py). Here each new outbox item is published with PutEvents, then deleted.
At least once, with the same id: a record whose publish failed (the whole call, or its
entry: FailedEntryCount) stays in the outbox and is reported as the batch's first
failure, so Lambda retries from it; a record the relay already published (a retry of
its batch) is no longer in the outbox and is skipped. The postback id travels in the
event's detail, so PostbackFunction sends the same X-MMS-Postback-Id whatever the
EventBridge event id of each publish.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmsapi.errors import DomainError
from mmsapi.observability import count, logger, message_context, postback_ids
from mmsapi.store.events import MAX_ENTRIES, EventPublisher
from mmsapi.store.outbox import OutboxStore, Postback, postback_of


@dataclass(frozen=True)
class _Pending:
    sequence_number: str
    postback: Postback


def _pending(records: Iterable[Mapping[str, Any]]) -> list[_Pending]:
    """The new outbox items of a batch of stream records (REMOVE records are the relay's
    own deletes, or TTL expiries: nothing to publish)."""
    found = []
    for record in records:
        stream = record.get("dynamodb") or {}
        image = stream.get("NewImage")
        if record.get("eventName") not in ("INSERT", "MODIFY") or not image:
            continue
        try:
            postback = postback_of(image)
        except (KeyError, TypeError, ValueError):
            # Not an item store/outbox.py wrote: retrying cannot help, and it would hold
            # back every postback behind it. It stays in the table for an operator.
            logger.error("outbox item unreadable: skipped", extra={"keys": stream.get("Keys")})
            continue
        found.append(_Pending(str(stream.get("SequenceNumber", "")), postback))
    return found


def relay(
    records: Sequence[Mapping[str, Any]], outbox: OutboxStore, events: EventPublisher
) -> str | None:
    """Publish the postbacks of a batch of stream records, in order.

    Returns None when all are published, else the sequence number of the first record
    that is not (Lambda retries the batch from it: batchItemFailures).
    """
    pending = _pending(records)
    for start in range(0, len(pending), MAX_ENTRIES):
        chunk = [p for p in pending[start : start + MAX_ENTRIES] if outbox.pending(p.postback.id)]
        try:
            failed = set(events.publish([p.postback for p in chunk]))
        except DomainError as exc:
            logger.warning("outbox publish failed", extra={"reason": str(exc)})
            return chunk[0].sequence_number
        for item in chunk:
            if item.postback.id not in failed:
                outbox.done(item.postback.id)
                _published(item.postback)
        if failed:
            first = next(p for p in chunk if p.postback.id in failed)
            logger.warning("outbox entries not published", extra={"postback_ids": sorted(failed)})
            return first.sequence_number
    return None


def _published(postback: Postback) -> None:
    """One line and one data point (metric PostbacksPublished, per code) per postback."""
    code = str(postback.detail.get("code") or "")
    with message_context(action="relay", **postback_ids(postback.detail)):
        logger.info("postback published", extra={"postback_id": postback.id, "code": code})
    count("PostbacksPublished", code=code)


def redrive(outbox: OutboxStore, events: EventPublisher) -> int:
    """Publish every postback still in the outbox (those whose stream records ran out of
    retries: OutboxDLQ); returns how many were published. Safe to run again."""
    published = 0
    batch: list[Postback] = []
    for postback in outbox.scan():
        batch.append(postback)
        if len(batch) == MAX_ENTRIES:
            published += _publish_all(batch, outbox, events)
            batch = []
    return published + _publish_all(batch, outbox, events)


def _publish_all(batch: list[Postback], outbox: OutboxStore, events: EventPublisher) -> int:
    failed = set(events.publish(batch))
    for postback in batch:
        if postback.id not in failed:
            outbox.done(postback.id)
    return len(batch) - len(failed)
