"""The postback outbox: every fact a customer is told about is written here first.

A state change that yields a postback writes its outbox item in the same
TransactWriteItems as the state (SendStore.save, TemplateStore.create/replace with
`postback=`): both are written, or neither. The table's stream hands each new item to
OutboxFunction (services/outbox.relay), which publishes it on the event bus and then
deletes it. The item's id is the postback's X-MMS-Postback-Id: derived from the message
and its code, it is the same on every relay and every delivery retry.

Accepted sends reach the send queue the same way without an outbox item: the write
of a send that queues it is marked (ENQUEUE, store/sends.py) and the sends table's
stream hands it to the same relay (`queued_send_of`), so the API answers its
tracking-id without calling SQS, and the relay puts the send on the queue
(SendMessageBatch). Items of kind QUEUE_KIND, written before, are still relayed.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo

DAY_SECONDS: Final = 86_400
# An item the relay could not publish in this long (its stream records are gone after
# 24 h, its failure is in OutboxDLQ) stays this long for an operator to redrive.
KEEP_DAYS: Final = 14
# BatchWriteItem takes 25 requests a call; items it leaves unprocessed (throttling) are
# sent again after a pause, doubling, this many times before the relay gives up.
_BATCH_WRITES: Final = 25
_UNPROCESSED_TRIES: Final = 5
_UNPROCESSED_PAUSE: Final = 0.05


@dataclass(frozen=True)
class Postback:
    """One event for the bus: its stable id, EventBridge detail-type, and detail."""

    id: str
    detail_type: str
    detail: dict[str, Any]

    def body(self) -> str:
        """The detail as published: the id goes with it, for the postback header."""
        return json.dumps({**self.detail, "postback_id": self.id}, separators=(",", ":"))


@dataclass(frozen=True)
class QueuedSend:
    """One accepted send for the send queue, with the ids the relay's log lines carry
    (account, mms_id, client_reference): a marked write of the send (`in_outbox`
    False), or an outbox item of kind QUEUE_KIND (written before the mark was)."""

    id: str
    send_id: int
    ids: dict[str, Any]
    in_outbox: bool = True


QUEUE_KIND: Final = "queue-send"
# The attribute that marks a write of a send that queues it (store/sends.py).
ENQUEUE: Final = "enqueue"


def queue_id(send_id: int, step: str = "") -> str:
    """The "queue send" item of a send's acceptance, or of a later `step` that queues it
    again (its own id: a relay behind by both must not read one key twice)."""
    return f"queue-send-{send_id}-{step}" if step else f"queue-send-{send_id}"


def send_postback_id(send_id: int, code: str) -> str:
    return f"send-{send_id}-{code}"


def template_postback_id(mms_id: int, code: str) -> str:
    return f"template-{mms_id}-{code}"


def item_of(postback: Postback) -> dict[str, Any]:
    expires = int(time.time()) + KEEP_DAYS * DAY_SECONDS
    return {
        "id": {"S": postback.id},
        "detail_type": {"S": postback.detail_type},
        "detail": {"S": json.dumps(postback.detail, separators=(",", ":"))},
        "expires_at": {"N": str(expires)},  # the table's TTL attribute
    }


def postback_of(item: dict[str, Any]) -> Postback:
    """The postback of an outbox item (or of a stream record's NewImage)."""
    detail: dict[str, Any] = json.loads(item["detail"]["S"])
    return Postback(id=item["id"]["S"], detail_type=item["detail_type"]["S"], detail=detail)


def entry_of(item: dict[str, Any]) -> Postback | QueuedSend:
    """What an outbox item (or a stream record's NewImage) asks for."""
    if item.get("kind", {}).get("S") == QUEUE_KIND:
        ids: dict[str, Any] = json.loads(item["ids"]["S"]) if "ids" in item else {}
        return QueuedSend(id=item["id"]["S"], send_id=int(item["send_id"]["N"]), ids=ids)
    return postback_of(item)


def queued_send_of(image: dict[str, Any]) -> QueuedSend:
    """The send to queue of a sends table stream record's NewImage (marked ENQUEUE)."""
    send_id = int(image["send_id"]["N"])
    ids: dict[str, Any] = {"account": image.get("account_id", {}).get("S")}
    ids.update(_doc_ids(image.get("docz", {}).get("B")))
    step = image[ENQUEUE]["S"]
    return QueuedSend(id=queue_id(send_id, step), send_id=send_id, ids=ids, in_outbox=False)


def _doc_ids(packed: Any) -> dict[str, Any]:
    """mms_id and client_reference of a send's stored document (Lambda hands binary
    attributes over in base64; the document is zlib'd JSON). Only the relay's log line
    needs them: a document that cannot be read gives none, and the send is queued."""
    try:
        raw = base64.b64decode(packed) if isinstance(packed, str) else bytes(packed)
        doc = json.loads(zlib.decompress(raw))
        return {"mms_id": doc.get("mms_id"), "client_reference": doc.get("client_reference")}
    except Exception:
        return {}


def transact_put(postback: Postback) -> dict[str, Any]:
    """OutboxStore().transact_put: for the stores that write a postback with their item."""
    return OutboxStore().transact_put(postback)


class OutboxStore:
    def __init__(self, table: str | None = None) -> None:
        self.table = table or get_settings().outbox_table

    def transact_put(self, postback: Postback) -> dict[str, Any]:
        """The TransactWriteItems part that writes this postback beside a state change.

        Unconditional: the state change's own condition makes it happen once, and a
        repeated write is the same id, which receivers de-duplicate.
        """
        return {"Put": {"TableName": self.table, "Item": item_of(postback)}}

    def put(self, postback: Postback) -> None:
        """A postback that comes with no state change of its own (a refused DDM)."""
        dynamo.put_item(self.table, item_of(postback), what="postback")

    def pending(self, entry_id: str) -> bool:
        """Still waiting to be published (a relay retry skips what was published)."""
        key = {"id": {"S": entry_id}}
        return dynamo.get_item(self.table, key, what="postback") is not None

    def still_pending(self, entry_ids: Sequence[str]) -> set[str]:
        """Those of these entries still waiting to be published: `pending` for many, in
        consistent BatchGetItems (a consistent read: a new item is never missed). An id
        may come twice (a stream batch with two writes of one item): AWS refuses a batch
        naming a key twice."""
        keys = [{"id": {"S": entry_id}} for entry_id in dict.fromkeys(entry_ids)]
        return {item["id"]["S"] for item in dynamo.batch_get(self.table, keys, what="postback")}

    def done_all(self, entry_ids: Sequence[str]) -> None:
        """Published: forget them (their REMOVE records are filtered out of the relay's
        events). BatchWriteItem deletes, 25 a call; DomainError if some could not be
        deleted (they are published again: at least once, with the same id)."""
        entry_ids = list(dict.fromkeys(entry_ids))  # a batch may not name a key twice
        for start in range(0, len(entry_ids), _BATCH_WRITES):
            requests: list[Any] = [
                {"DeleteRequest": {"Key": {"id": {"S": entry_id}}}}
                for entry_id in entry_ids[start : start + _BATCH_WRITES]
            ]
            for attempt in range(_UNPROCESSED_TRIES):
                if attempt:
                    time.sleep(_UNPROCESSED_PAUSE * 2 ** (attempt - 1))
                try:
                    answer = aws.dynamodb().batch_write_item(RequestItems={self.table: requests})
                except ClientError as exc:
                    raise DomainError(f"postback delete failed: {exc}") from exc
                requests = list(answer.get("UnprocessedItems", {}).get(self.table, []))
                if not requests:
                    break
            else:
                raise DomainError(f"postback delete failed: {len(requests)} left unprocessed")

    def scan(self) -> Iterator[Postback | QueuedSend]:
        """Every entry still waiting (for redrive: the table is small, items go once
        published)."""
        try:
            for page in aws.dynamodb().get_paginator("scan").paginate(TableName=self.table):
                for item in page["Items"]:
                    yield entry_of(item)
        except ClientError as exc:
            raise DomainError(f"postback scan failed: {exc}") from exc
