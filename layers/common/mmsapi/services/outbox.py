"""The outbox relay (OutboxFunction): the outbox table's stream -> the event bus, and
the sends table's stream -> the send queue.

Every postback is written to the outbox in the transaction of its state change
(store/outbox.py). Here each new outbox item is published (PutEvents), then deleted.
Every write of a send that queues it is marked (store/sends.py ENQUEUE); the sends
stream's filter hands only those over, and here each is queued (SendMessageBatch).

At least once, with the same id: a record whose publish failed (the whole call, or its
entry) is reported in batchItemFailures (the earliest such), so Lambda retries from
it; an outbox item stays in the outbox until published, and a record the relay
already published (a retry of its batch, a record delivered twice) is no longer in the
outbox and is skipped. The postback id travels in the event's detail, so
PostbackFunction sends the same X-MMS-Postback-Id whatever the EventBridge event id of
each publish. A send queued twice (a retried batch of the sends stream; a relay that
died between its publish and its delete) is delivered once: the deliver function
claims only a queued send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from mmsapi.errors import DomainError
from mmsapi.observability import logger, message_context, postback_ids, tally
from mmsapi.store.events import MAX_ENTRIES, EventPublisher
from mmsapi.store.outbox import ENQUEUE, OutboxStore, Postback, QueuedSend, entry_of, queued_send_of
from mmsapi.store.send_queue import SQS_BATCH, SendQueue
from mmsapi.tracking import tracking_id

_Entry = TypeVar("_Entry", QueuedSend, Postback)


@dataclass(frozen=True)
class _Pending:
    position: int  # in the batch: the earliest failure is retried from
    sequence_number: str
    entry: Postback | QueuedSend


def _pending(records: Iterable[Mapping[str, Any]]) -> list[_Pending]:
    """The new outbox items, and the marked send writes, of a batch of stream records
    (REMOVE records are the relay's own deletes, or TTL expiries: nothing to publish)."""
    found = []
    for position, record in enumerate(records):
        stream = record.get("dynamodb") or {}
        image = stream.get("NewImage")
        if record.get("eventName") not in ("INSERT", "MODIFY") or not image:
            continue
        try:
            entry = queued_send_of(image) if ENQUEUE in image else entry_of(image)
        except (KeyError, TypeError, ValueError):
            # Not an item the stores wrote: retrying cannot help, and it would hold back
            # every postback behind it. It stays in the table for an operator.
            logger.error("outbox item unreadable: skipped", extra={"keys": stream.get("Keys")})
            continue
        found.append(_Pending(position, str(stream.get("SequenceNumber", "")), entry))
    return found


def relay(
    records: Sequence[Mapping[str, Any]],
    outbox: OutboxStore,
    events: EventPublisher,
    queue: SendQueue,
) -> str | None:
    """Publish the postbacks and queue the sends of a batch of stream records.

    Returns None when all are done, else the sequence number of the earliest record
    that is not (Lambda retries the batch from it: batchItemFailures; those after it
    that were done are skipped then, being out of the outbox).
    """
    pending = _pending(records)
    sends = [(p, p.entry) for p in pending if isinstance(p.entry, QueuedSend)]
    postbacks = [(p, p.entry) for p in pending if isinstance(p.entry, Postback)]
    failed = _queue_sends(sends, outbox, queue) + _publish_postbacks(postbacks, outbox, events)
    if not failed:
        return None
    return min(failed, key=lambda p: p.position).sequence_number


def _queue_sends(
    pending: list[tuple[_Pending, QueuedSend]], outbox: OutboxStore, queue: SendQueue
) -> list[_Pending]:
    """Queue the sends (SendMessageBatch, 10 a call); the entries not queued."""

    def enqueue(sends: list[QueuedSend]) -> set[str]:
        refused = set(queue.enqueue_many([send.send_id for send in sends]))
        return {send.id for send in sends if send.send_id in refused}

    return _hand_over(pending, outbox, SQS_BATCH, enqueue, _queued, "queueing sends")


def _publish_postbacks(
    pending: list[tuple[_Pending, Postback]], outbox: OutboxStore, events: EventPublisher
) -> list[_Pending]:
    """Publish the postbacks (PutEvents, MAX_ENTRIES a call); the entries not published."""

    def publish(postbacks: list[Postback]) -> set[str]:
        return set(events.publish(postbacks))

    return _hand_over(pending, outbox, MAX_ENTRIES, publish, _published, "publishing postbacks")


def _hand_over(
    pending: list[tuple[_Pending, _Entry]],
    outbox: OutboxStore,
    size: int,
    hand: Callable[[list[_Entry]], set[str]],
    done: Callable[[_Entry], None],
    what: str,
) -> list[_Pending]:
    """Hand the entries still in the outbox over in order, `size` a call (`hand` answers
    the ids of those refused), until a call or an entry fails; the entries not handed
    over. Each one handed over leaves the outbox. Three calls a chunk: which are still
    pending (BatchGetItem), hand them over, delete those handed (BatchWriteItem). A
    marked send write is not in the outbox: handed over as it comes."""
    for start in range(0, len(pending), size):
        window = pending[start : start + size]
        kept = [entry.id for _, entry in window if _in_outbox(entry)]
        still = outbox.still_pending(kept) if kept else set()
        still.update(entry.id for _, entry in window if not _in_outbox(entry))
        chunk = []
        for pending_entry in window:
            # Once each: a stream batch can hold two writes of one item.
            if pending_entry[1].id in still:
                still.remove(pending_entry[1].id)
                chunk.append(pending_entry)
        if not chunk:
            continue
        try:
            failed = hand([entry for _, entry in chunk])
        except DomainError as exc:
            logger.warning(f"{what} failed", extra={"reason": str(exc)})
            return [p for p, _ in pending[start:]]
        handed = [entry for _, entry in chunk if entry.id not in failed]
        done_ids = [entry.id for entry in handed if _in_outbox(entry)]
        if done_ids:
            outbox.done_all(done_ids)
        for entry in handed:
            done(entry)
        if failed:
            logger.warning(f"{what}: some refused", extra={"entry_ids": sorted(failed)})
            not_done = [p for p, entry in chunk if entry.id in failed]
            return not_done + [p for p, _ in pending[start + size :]]
    return []


def _in_outbox(entry: QueuedSend | Postback) -> bool:
    return not isinstance(entry, QueuedSend) or entry.in_outbox


def _queued(send: QueuedSend) -> None:
    ids = {**send.ids, "send_id": send.send_id, "tracking_id": tracking_id(send.send_id)}
    with message_context(action="relay", **ids):
        logger.info("send queued")


def _published(postback: Postback) -> None:
    """One line and one data point (metric PostbacksPublished, per code) per postback."""
    code = str(postback.detail.get("code") or "")
    with message_context(action="relay", **postback_ids(postback.detail)):
        logger.info("postback published", extra={"postback_id": postback.id, "code": code})
    tally("PostbacksPublished", code=code)


def redrive(
    outbox: OutboxStore,
    events: EventPublisher,
    queue: SendQueue,
    queued_sends: Iterable[int] = (),
) -> int:
    """Publish every postback and queue every send still in the outbox, and queue the
    `queued_sends` (SendStore.queued_ids): those whose stream records ran out of
    retries (OutboxDLQ) are among them. Returns how many were done. Safe to run again."""
    done = 0
    batch: list[int] = []
    for send_id in queued_sends:
        batch.append(send_id)
        if len(batch) == SQS_BATCH:
            done += len(batch) - len(queue.enqueue_many(batch))
            batch = []
    if batch:
        done += len(batch) - len(queue.enqueue_many(batch))
    postbacks: list[Postback] = []
    sends: list[QueuedSend] = []
    for entry in outbox.scan():
        if isinstance(entry, QueuedSend):
            sends.append(entry)
        else:
            postbacks.append(entry)
        if len(postbacks) == MAX_ENTRIES:
            done += _publish_all(postbacks, outbox, events)
            postbacks = []
        if len(sends) == SQS_BATCH:
            done += _queue_all(sends, outbox, queue)
            sends = []
    return done + _publish_all(postbacks, outbox, events) + _queue_all(sends, outbox, queue)


def _publish_all(batch: list[Postback], outbox: OutboxStore, events: EventPublisher) -> int:
    if not batch:
        return 0
    failed = set(events.publish(batch))
    outbox.done_all([postback.id for postback in batch if postback.id not in failed])
    return len(batch) - len(failed)


def _queue_all(batch: list[QueuedSend], outbox: OutboxStore, queue: SendQueue) -> int:
    if not batch:
        return 0
    failed = set(queue.enqueue_many([entry.send_id for entry in batch]))
    outbox.done_all([entry.id for entry in batch if entry.send_id not in failed])
    return len(batch) - len(failed)
