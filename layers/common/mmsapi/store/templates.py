"""The templates table: one item per saved MMS, listed per account newest first.

A warm function keeps the ready templates it read (`ready`) for CACHE_SECONDS: a ready
template never changes again, except by its deletion, and a deletion counts within 1
second in every function, as an account change does (store/accounts.py, issue 10). A
send is not checked against the stored template when it is written (a ConditionCheck is
billed as a write of the whole item, up to MAX_ITEM_BYTES): delivery re-reads the
template consistently, so a send accepted in that half second after a deletion is never
submitted and ends with its E101 postback (services/deliver.py, docs/actions.md).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi import deadlines, records
from mmsapi.errors import DomainError
from mmsapi.models import Template, TemplateStatus, TemplateSummary
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo, outbox
from mmsapi.store.outbox import Postback
from mmsapi.store.sends import overdue_keys, unchanged_since

ACCOUNT_INDEX = "by-account"
# DynamoDB refuses items over 400 KB: finalize stays well below (services/encode).
MAX_ITEM_BYTES = 350_000
# Ready templates kept per warm function: at most this many, of at most this many bytes
# of stored documents in all (a parsed one takes a few times its JSON in memory).
CACHE_ENTRIES: Final = 256
CACHE_BYTES: Final = 8 * 1024 * 1024
# How long a warm function trusts a ready template it read: well under the 1 second
# within which a deletion must count everywhere (KEY_CACHE_SECONDS of the accounts).
CACHE_SECONDS: Final = 0.5


class ReadyTemplates:
    """The least recently used ready templates read under CACHE_SECONDS ago, bounded in
    entries and document bytes."""

    def __init__(
        self,
        entries: int = CACHE_ENTRIES,
        size: int = CACHE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.entries, self.size, self.clock = entries, size, clock
        self._kept: OrderedDict[int, tuple[Template, int, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # the local runtime serves requests on threads

    def get(self, mms_id: int) -> Template | None:
        with self._lock:
            found = self._kept.get(mms_id)
            if found is None:
                return None
            if self.clock() - found[2] >= CACHE_SECONDS:
                self._drop(mms_id)  # read again: it may have been deleted since
                return None
            self._kept.move_to_end(mms_id)
            return found[0]

    def put(self, template: Template, size: int, read_at: float | None = None) -> None:
        """Keep `template`, as read at `read_at` (this cache's clock; default now)."""
        if size > self.size:
            return
        when = self.clock() if read_at is None else read_at
        with self._lock:
            self._drop(template.mms_id)
            self._kept[template.mms_id] = (template, size, when)
            self._bytes += size
            while len(self._kept) > self.entries or self._bytes > self.size:
                self._drop(next(iter(self._kept)))

    def forget(self, mms_id: int) -> None:
        with self._lock:
            self._drop(mms_id)

    def _drop(self, mms_id: int) -> None:
        gone = self._kept.pop(mms_id, None)
        if gone is not None:
            self._bytes -= gone[1]

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def bytes(self) -> int:
        return self._bytes


def _created_key(template: Template) -> str:
    # ISO timestamps sort as text; the id breaks ties between templates of one instant.
    return f"{template.created_at.isoformat(timespec='microseconds')}#{template.mms_id:020d}"


class TemplateStore:
    def __init__(self, table: str | None = None) -> None:
        self.table = table or get_settings().templates_table
        self.cache = ReadyTemplates()

    def _item(self, template: Template) -> dict[str, Any]:
        item = {
            "mms_id": {"N": str(template.mms_id)},
            "account_id": {"S": template.account_id},
            "created_key": {"S": _created_key(template)},
            "status": {"S": template.status.value},
            "doc": {"S": records.to_json(template)},
        }
        budget = deadlines.template_budget(template)
        if budget is not None:  # encoding: the sweeper's sparse index holds it until final
            item["sweep_shard"] = {"S": deadlines.shard(template.mms_id)}
            item["settle_by"] = {"N": str(int(time.time()) + budget)}
        return item

    def fits(self, template: Template) -> bool:
        """Whether its item stays within DynamoDB's 400 KB (names and values, UTF-8),
        with room to spare: a write that would be refused is not tried."""
        item = self._item(template)
        size = sum(len(k) + len(next(iter(v.values())).encode()) for k, v in item.items())
        return size <= MAX_ITEM_BYTES

    def settle_by(self, mms_id: int) -> int | None:
        """The stored deadline of a template still encoding (None: final, or none)."""
        item = dynamo.get_item(self.table, {"mms_id": {"N": str(mms_id)}}, what="template")
        return int(item["settle_by"]["N"]) if item and "settle_by" in item else None

    def settle(
        self,
        template: Template,
        expected: TemplateStatus,
        settle_by: int | None,
        postback: Postback | None,
    ) -> bool:
        """The sweeper's write: `template` (final), with its postback, only if the stored
        one is still `expected` with the deadline the sweeper read."""
        put = {
            "TableName": self.table,
            "Item": self._item(template),
            **unchanged_since(expected.value, settle_by),
        }
        parts: list[dict[str, Any]] = [{"Put": put}]
        if postback is not None:
            parts.append(outbox.transact_put(postback))
        return dynamo.transact_write(parts, what="template")

    def overdue(self, now: int, limit: int) -> list[int]:
        """mms-ids of templates still encoding past their deadline (eventually
        consistent: the sweeper re-reads each and runs again)."""
        return overdue_keys(self.table, "mms_id", now, limit)

    def create(self, template: Template, *, postback: Postback | None = None) -> None:
        """Write a new template; with `postback`, its postback in the same transaction."""
        if postback is None:
            dynamo.create_item(self.table, self._item(template), "mms_id", what="template")
            return
        new = {"ConditionExpression": "attribute_not_exists(mms_id)"}
        put = {"Put": {"TableName": self.table, "Item": self._item(template), **new}}
        if not dynamo.transact_write([put, outbox.transact_put(postback)], what="template"):
            raise DomainError("template write failed: the mms_id exists already")

    def replace(
        self, template: Template, expected: TemplateStatus, *, postback: Postback | None = None
    ) -> bool:
        """Overwrite a template if its status is still `expected`; False if it is not.
        With `postback`, its postback goes to the outbox in the same transaction."""
        condition: dict[str, Any] = {
            "ConditionExpression": "#s = :expected",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":expected": {"S": expected.value}},
        }
        if postback is None:
            return dynamo.put_item(self.table, self._item(template), what="template", **condition)
        put = {"Put": {"TableName": self.table, "Item": self._item(template), **condition}}
        return dynamo.transact_write([put, outbox.transact_put(postback)], what="template")

    def get(self, mms_id: int) -> Template | None:
        found = self._read(mms_id)
        return found[0] if found else None

    def _read(self, mms_id: int) -> tuple[Template, int] | None:
        """The template as stored now, and its document's size."""
        item = dynamo.get_item(self.table, {"mms_id": {"N": str(mms_id)}}, what="template")
        if item is None:
            return None
        doc = item["doc"]["S"]
        return records.from_json(Template, doc), len(doc)

    def ready(self, mms_id: int) -> Template | None:
        """The template: this function's copy if it was ready when read under
        CACHE_SECONDS ago (shared: not to be changed), else as stored now. The copy may
        have been deleted since: delivery reads the template again before it sends."""
        cached = self.cache.get(mms_id)
        if cached is not None:
            return cached
        read_at = self.cache.clock()  # before the read: the copy is as old as its read
        found = self._read(mms_id)
        if found is None:
            return None
        template, size = found
        if template.status is TemplateStatus.READY:
            self.cache.put(template, size, read_at)
        return template

    def mark_deleting(self, mms_id: int, account_id: str) -> bool:
        """Hide a template from every reader before its files go; False if not the account's."""
        self.cache.forget(mms_id)
        try:
            aws.dynamodb().update_item(
                TableName=self.table,
                Key={"mms_id": {"N": str(mms_id)}},
                UpdateExpression="SET #s = :deleting",
                ConditionExpression="account_id = :a AND #s <> :deleting",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":a": {"S": account_id},
                    ":deleting": {"S": TemplateStatus.DELETING.value},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == dynamo.CONDITION_FAILED:
                return False
            raise DomainError(f"template update failed: {exc}") from exc
        return True

    def delete(self, mms_id: int) -> None:
        self.cache.forget(mms_id)
        try:
            aws.dynamodb().delete_item(TableName=self.table, Key={"mms_id": {"N": str(mms_id)}})
        except ClientError as exc:
            raise DomainError(f"template delete failed: {exc}") from exc

    def page(
        self, account_id: str, since: datetime | None, page: int, per_page: int
    ) -> tuple[int, list[TemplateSummary]]:
        """Total visible templates and one page of them, newest first."""
        condition = "account_id = :a"
        values: dict[str, Any] = {
            ":a": {"S": account_id},
            ":deleting": {"S": TemplateStatus.DELETING.value},
        }
        if since is not None:
            condition += " AND created_key >= :since"
            values[":since"] = {"S": since.isoformat(timespec="microseconds")}
        # Counting reads only keys and status: a page's documents are read by key after,
        # so a listing costs its page, not every template of the account.
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": ACCOUNT_INDEX,
            "KeyConditionExpression": condition,
            "FilterExpression": "#s <> :deleting",
            "ProjectionExpression": "mms_id",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        first = (page - 1) * per_page
        total = 0
        wanted: list[int] = []
        try:
            for answer in aws.dynamodb().get_paginator("query").paginate(**query):
                for item in answer["Items"]:
                    if first <= total < first + per_page:
                        wanted.append(int(item["mms_id"]["N"]))
                    total += 1
        except ClientError as exc:
            raise DomainError(f"template listing failed: {exc}") from exc
        keys = [{"mms_id": {"N": str(mms_id)}} for mms_id in wanted]
        docs = {
            int(item["mms_id"]["N"]): item["doc"]["S"]
            for item in dynamo.batch_get(self.table, keys, what="template listing")
            if "doc" in item
        }
        rows = [
            _summary(records.from_json(Template, docs[mms_id]))
            for mms_id in wanted
            if mms_id in docs
        ]
        return total, rows


def _summary(template: Template) -> TemplateSummary:
    return TemplateSummary(
        mms_id=template.mms_id,
        name=template.name,
        subject=template.subject,
        created_at=template.created_at,
        total_slides=len(template.slides),
        size_bytes=template.size_bytes,
    )
