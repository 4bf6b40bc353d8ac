"""The sends table (one item per message to one recipient) and the send queue.

Delivery reports name the carrier's message id, not ours. Each id the carrier (or
the SMS gateway) gives a send gets an item of the carrier messages table, written
just before the send, and read back with a consistent GetItem: a report that
arrives a moment after the submit finds its send (a GSI, eventually consistent on
AWS, could still miss it then).

Every write of a send rewrites its whole item, billed per started KB (twice in a
transaction): the Send document is stored zlib-compressed as a Binary attribute
(`docz`, billed by its bytes), which keeps a typical send with its history under 1 KB.
Items written before carry it as text (`doc`): `send_of` reads both.

A write that puts the send on the send queue (its acceptance, its discovery's end)
marks the item with `enqueue` (ENQUEUE_ACCEPTED, ENQUEUE_DISCOVERED): the table's
stream hands the marked writes to the outbox relay, which queues the send
(services/outbox.py). The send's own write is the queue entry: no outbox item (2 write
units in the transaction, 1 to delete it) and no SQS call on the API's path. Every
later write of the item leaves the mark out, so only these writes are relayed.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator, Mapping
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi import deadlines, records
from mmsapi.errors import DomainError
from mmsapi.models import Send, SendStatus, SendStep, utcnow
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo, opt_outs, outbox
from mmsapi.store.outbox import Postback
from mmsapi.store.send_queue import SQS_BATCH, SendQueue

__all__ = ["SQS_BATCH", "SendQueue", "SendStore", "send_of"]  # the queue's old home

DAY_SECONDS = 86_400
# Steps kept in a send's history: retries could otherwise grow the item without bound.
MAX_STEPS = 50
# The attribute of the compressed document; "doc" (text) in items written before it.
DOC: Final = "docz"
# The mark of a write that queues the send (the stream filter of OutboxFunction's
# Sends event in template.yaml names it), and its values.
ENQUEUE: Final = outbox.ENQUEUE
ENQUEUE_ACCEPTED: Final = "accepted"
ENQUEUE_DISCOVERED: Final = "discovered"


class SendStore:
    def __init__(self, table: str | None = None, carrier_table: str | None = None) -> None:
        self.table = table or get_settings().sends_table
        self.carrier_table = carrier_table or get_settings().carrier_messages_table

    def _item(self, send: Send, enqueue: str = "") -> dict[str, Any]:
        item: dict[str, Any] = {
            "send_id": {"N": str(send.send_id)},
            "account_id": {"S": send.account_id},
            "status": {"S": send.status.value},
            DOC: {"B": compress(send)},
        }
        if enqueue:
            item[ENQUEUE] = {"S": enqueue}
        if send.carrier_message_id:
            item["carrier_message_id"] = {"S": send.carrier_message_id}
        budget = deadlines.send_budget(send)
        if budget is not None:  # under way: the sweeper's sparse index holds it until final
            now = int(time.time())
            due = now + budget
            key = deadlines.index_key(int(send.created_at.timestamp()), now, due)
            item["sweep_shard"] = {"S": deadlines.shard(send.send_id)}
            item["due"] = {"N": str(due)}
            item["settle_by"] = {"N": str(key)}  # the index key: deadlines.index_key
        return item

    def _carrier_item(self, send: Send) -> dict[str, Any]:
        expires = int(time.time()) + get_settings().carrier_message_days * DAY_SECONDS
        return {
            "carrier_message_id": {"S": send.carrier_message_id},
            "send_id": {"N": str(send.send_id)},
            "expires_at": {"N": str(expires)},  # the table's TTL attribute
        }

    def create(self, send: Send, *, queue: bool = False) -> None:
        """Write a new send. With `queue`, the item is marked to be queued (ENQUEUE): the
        outbox relay, reading the table's stream, puts it on the send queue. Once this
        returns, the send is stored and will reach the queue, with no SQS call here. The
        same transaction checks that the recipient has not opted out
        (store/opt_outs.py): else OptedOutError, nothing written."""
        send.updated_at = send.created_at  # its first step is its acceptance
        send.history = _with_step(send, None)
        new = {"ConditionExpression": "attribute_not_exists(send_id)"}
        item = self._item(send, ENQUEUE_ACCEPTED if queue else "")
        parts: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": item, **new}},
            opt_outs.not_opted_out(send.account_id, send.to),
        ]
        failed = dynamo.transact_write_failed(parts, what="send")
        if 1 in failed:
            raise opt_outs.OptedOutError(f"{send.to} opted out of account {send.account_id}")
        if failed:
            raise DomainError("send write failed: the send_id exists already")

    def save(
        self,
        send: Send,
        expected: SendStatus | None = None,
        *,
        carrier_message: bool = False,
        postback: Postback | None = None,
        queue: bool = False,
    ) -> bool:
        """Write a send; with `expected`, only if its stored status is still that.

        With `carrier_message`, the send has just been given its carrier_message_id:
        the id's lookup item is written first, so that its delivery report finds the
        send as soon as this returns. With `postback`, the postback of
        this change goes to the outbox in the same transaction: both or neither. With
        `queue` (a send queued again after its discovery), the write is marked to be
        queued (ENQUEUE_DISCOVERED): the relay queues it.
        """
        send.updated_at = utcnow()
        history, send.history = send.history, _with_step(send, postback)
        written = self._save(send, expected, carrier_message, postback, queue)
        if not written:
            send.history = history  # not stored: the caller may try again
        return written

    def _save(
        self,
        send: Send,
        expected: SendStatus | None,
        carrier_message: bool,
        postback: Postback | None,
        queue: bool = False,
    ) -> bool:
        extra: dict[str, Any] = {}
        if expected is not None:
            extra = {
                "ConditionExpression": "#s = :expected",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":expected": {"S": expected.value}},
            }
        if carrier_message and send.carrier_message_id:
            # Before the send, not in its transaction (2 WRU there, 1 here): a report
            # finds the send once it is written, as with one transaction. A lookup left
            # by a send write that is then refused names a send that does not carry
            # its id: by_carrier_message_id ignores it. Unconditional: an id the
            # carrier reuses belongs to its latest send.
            dynamo.put_item(self.carrier_table, self._carrier_item(send), what="carrier message")
        item = self._item(send, ENQUEUE_DISCOVERED if queue else "")
        if postback is None:
            return dynamo.put_item(self.table, item, what="send", **extra)
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": item, **extra}},
            outbox.transact_put(postback),
        ]
        return dynamo.transact_write(items, what="send")

    def get(self, send_id: int) -> Send | None:
        item = dynamo.get_item(self.table, {"send_id": {"N": str(send_id)}}, what="send")
        return send_of(item) if item else None

    def settle_by(self, send_id: int) -> int | None:
        """The stored deadline of a send under way (None: final, or no such send): its
        `due`, or the index key of items written before `due` was (it was the deadline)."""
        item = dynamo.get_item(self.table, {"send_id": {"N": str(send_id)}}, what="send")
        return _due(item) if item else None

    def look_later(self, send_id: int, expected: SendStatus, due: int) -> bool:
        """The sweeper found a send at its first look, not yet due: index it at its
        deadline (deadlines.py), only if it is still `expected` with that deadline and
        still indexed earlier. False if it changed meanwhile (its writer indexed it)."""
        try:
            aws.dynamodb().update_item(
                TableName=self.table,
                Key={"send_id": {"N": str(send_id)}},
                # Not a write that queues it: the stream must not relay it again.
                UpdateExpression=f"SET settle_by = :due REMOVE {ENQUEUE}",
                ConditionExpression="#s = :expected AND due = :due AND settle_by < :due",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":expected": {"S": expected.value},
                    ":due": {"N": str(due)},
                },
            )
        except aws.dynamodb().exceptions.ConditionalCheckFailedException:
            return False
        except ClientError as exc:
            raise DomainError(f"send deadline update failed: {exc}") from exc
        return True

    def settle(
        self, send: Send, expected: SendStatus, settle_by: int | None, postback: Postback
    ) -> bool:
        """The sweeper's write: `send` (final) and its postback, only if the stored send
        is still `expected` with the deadline `settle_by` the sweeper read (a worker that
        moved it on, or gave it a new deadline, wins)."""
        send.updated_at = utcnow()
        history, send.history = send.history, _with_step(send, postback)
        put = {
            "TableName": self.table,
            "Item": self._item(send),
            **unchanged_since(expected.value, settle_by, separate_due=True),
        }
        written = dynamo.transact_write([{"Put": put}, outbox.transact_put(postback)], what="send")
        if not written:
            send.history = history
        return written

    def overdue(self, now: int, limit: int) -> list[int]:
        """Ids of sends still under way past their deadline (the sparse index: eventually
        consistent, which a sweeper that runs again tolerates; each is re-read)."""
        return overdue_keys(self.table, "send_id", now, limit)

    def queued_ids(self) -> Iterator[int]:
        """Ids of every send now queued: for redrive after the sends stream's records ran
        out of retries (OutboxDLQ). Not only those still marked (ENQUEUE): the sweeper's
        first look removes the mark long before a stream record gives up. A send already
        on the queue is among them too: queued twice, delivered once."""
        paginator = aws.dynamodb().get_paginator("scan")
        try:
            for page in paginator.paginate(
                TableName=self.table,
                FilterExpression="#s = :queued",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":queued": {"S": SendStatus.QUEUED.value}},
                ProjectionExpression="send_id",
            ):
                for item in page["Items"]:
                    yield int(item["send_id"]["N"])
        except ClientError as exc:
            raise DomainError(f"sends scan failed: {exc}") from exc

    def backfill_carrier_messages(self) -> int:
        """Write the lookup item of every send still awaiting a report (sends made before
        the carrier messages table existed); returns how many. Safe to run again."""
        written = 0
        paginator = aws.dynamodb().get_paginator("scan")
        waiting = [SendStatus.SENT.value, SendStatus.DISCOVERING.value]
        for page in paginator.paginate(
            TableName=self.table,
            FilterExpression="attribute_exists(carrier_message_id) AND #s IN (:a, :b)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":a": {"S": waiting[0]}, ":b": {"S": waiting[1]}},
        ):
            for item in page["Items"]:
                send = send_of(item)
                if send.carrier_message_id:
                    dynamo.put_item(
                        self.carrier_table, self._carrier_item(send), what="carrier message"
                    )
                    written += 1
        return written

    def by_carrier_message_id(self, message_id: str) -> Send | None:
        """The send that the carrier knows by this id (two consistent reads), or None."""
        if not message_id:
            return None
        found = dynamo.get_item(
            self.carrier_table, {"carrier_message_id": {"S": message_id}}, what="carrier message"
        )
        if found is None:
            return None
        send = self.get(int(found["send_id"]["N"]))
        # A DDM's id stays behind when the real MMS gets its own: it names that send no more.
        if send is None or send.carrier_message_id != message_id:
            return None
        return send


def compress(send: Send) -> bytes:
    """The stored form of a send's document (deterministic: a retried create compares)."""
    return zlib.compress(records.to_json(send).encode("utf-8"), 9)


def send_of(item: Mapping[str, Any]) -> Send:
    """The send of a stored item: its compressed document, or the text of older items."""
    if DOC in item:
        return records.from_json(Send, zlib.decompress(item[DOC]["B"]))
    return records.from_json(Send, item["doc"]["S"])


def _with_step(send: Send, postback: Postback | None) -> list[SendStep]:
    """The send's history with its change now (bounded: the first step and the latest)."""
    step = SendStep(
        at=send.updated_at,
        status=send.status,
        sent_as=send.sent_as,
        carrier_message_id=send.carrier_message_id,
        handset=send.handset,
        postback=str(postback.detail.get("code", "")) if postback else "",
        # Only where it went out: later steps would repeat it in every item write.
        rendition=send.rendition if send.status is SendStatus.SENT else "",
    )
    history = [*send.history, step]
    if len(history) > MAX_STEPS:
        history = [history[0], *history[1 - MAX_STEPS :]]
    return history


def _due(item: Mapping[str, Any]) -> int | None:
    """A stored send's deadline: `due`, or (items written before it) the index key."""
    for name in ("due", "settle_by"):
        if name in item:
            return int(item[name]["N"])
    return None


def unchanged_since(
    status: str, settle_by: int | None, *, separate_due: bool = False
) -> dict[str, Any]:
    """The condition of a sweeper's write: the stored record still has the status and the
    deadline the sweeper read (a worker that moved it on, or gave it a new deadline, wins).
    With `separate_due` (sends), the deadline is `due`, or the key of an item without one."""
    if settle_by is None:
        deadline = "attribute_not_exists(settle_by)"
    elif separate_due:
        deadline = "(due = :due OR (attribute_not_exists(due) AND settle_by = :due))"
    else:
        deadline = "settle_by = :due"
    condition = f"#s = :expected AND {deadline}"
    values: dict[str, Any] = {":expected": {"S": status}}
    if settle_by is not None:
        values[":due"] = {"N": str(settle_by)}
    return {
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": values,
    }


def overdue_keys(table: str, key: str, now: int, limit: int) -> list[int]:
    """Up to `limit` numeric keys of `table` whose settle_by is past, an equal share from
    each shard (a shard with a backlog does not hold back the others' records)."""
    found: list[int] = []
    share = -(-limit // len(deadlines.shards()))
    for shard in deadlines.shards():
        if len(found) >= limit:
            break
        try:
            answer = aws.dynamodb().query(
                TableName=table,
                IndexName=deadlines.SETTLE_INDEX,
                KeyConditionExpression="sweep_shard = :shard AND settle_by <= :now",
                ExpressionAttributeValues={":shard": {"S": shard}, ":now": {"N": str(now)}},
                Limit=min(share, limit - len(found)),
            )
        except ClientError as exc:
            raise DomainError(f"overdue query failed: {exc}") from exc
        found.extend(int(item[key]["N"]) for item in answer["Items"])
    return found
