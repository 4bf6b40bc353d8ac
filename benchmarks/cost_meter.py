"""What benchmarks/cost.py counts while the emulated stack runs: every AWS call (by
operation, and in the units AWS bills it), every function invocation and its wall time,
and every byte the functions log.

- AWS calls: botocore's one call path (BaseClient._make_api_call, as benchmarks/aws_calls.py)
  is wrapped. A call is charged to the function whose invocation runs it
  (local.functions.running_function), or to the event source mapping the harness plays
  (`Meter.polling`); any other call (setting up, reading results) is not counted.
- DynamoDB request units are computed per call from item sizes, by AWS's rules: 1 WRU
  per started KB written (the larger of the item before and after), x2 in a transaction,
  plus one write per GSI whose key the item has (projected size; a key change is a
  delete and a put; a KEYS_ONLY index is not written when its key stays); a transaction's
  ConditionCheck is billed as a transactional write of the item it checks (measured on
  AWS: martinhicks.dev/articles/what-a-conditional-dynamodb-transaction-costs); 1 RRU
  per started 4 KB read strongly consistent, 0.5 eventually, x2 in a transaction, a
  Query's items summed before rounding. Item sizes are read from
  moto's backend directly (no AWS call), by DynamoDB's size rules.
- Invocations: local.functions.LocalFunction._invoke is wrapped; its wall time, rounded
  up to the millisecond, is the billed duration (an estimate: this machine, in-process;
  one invocation at a time, so that none is timed with the CPU another one used).
- Logs: the functions' stdout (Powertools' logger and EMF metrics) is a LogSink that
  counts bytes per function and keeps the distinct EMF metrics.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import math
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks.cost_prices import SQS_CHUNK, chunks

_polling: contextvars.ContextVar[str] = contextvars.ContextVar("cost_polling", default="")

S3_TIER1 = frozenset(
    {
        "PutObject",
        "CopyObject",
        "PostObject",
        "ListObjects",
        "ListObjectsV2",
        "ListObjectVersions",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
    }
)
S3_TIER2 = frozenset({"GetObject", "HeadObject", "SelectObjectContent"})
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)


# ---------------------------------------------------------------- item sizes


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one typed attribute value, by DynamoDB's item size rules."""
    kind, data = next(iter(value.items()))
    if kind == "S":
        return len(str(data).encode("utf-8"))
    if kind == "N":
        return _number_size(str(data))
    if kind == "B":
        return len(data) if isinstance(data, bytes | bytearray) else len(str(data)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode("utf-8")) for s in data)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + 1 + value_size(v) for k, v in data.items())
    return 0


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY, INCLUDE


@dataclass(frozen=True)
class TableInfo:
    keys: tuple[str, ...]
    indexes: tuple[Index, ...] = ()


def tables_of(template: dict[str, Any], physical: dict[str, str]) -> dict[str, TableInfo]:
    """Physical table name -> its key attributes and GSIs, from the translated template."""
    found: dict[str, TableInfo] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::DynamoDB::Table" or logical_id not in physical:
            continue
        props = resource.get("Properties", {})
        indexes = tuple(
            Index(
                gsi["IndexName"],
                tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                gsi.get("Projection", {}).get("ProjectionType", "ALL"),
            )
            for gsi in props.get("GlobalSecondaryIndexes", [])
        )
        keys = tuple(k["AttributeName"] for k in props["KeySchema"])
        found[physical[logical_id]] = TableInfo(keys, indexes)
    return found


# ---------------------------------------------------------------- the log sink


class LogSink(io.TextIOBase):
    """The functions' stdout: bytes counted per function, EMF metrics kept, text dropped."""

    def __init__(self, who: Callable[[], str]) -> None:
        self._who = who
        self._lock = threading.Lock()
        self.bytes: Counter[str] = Counter()
        self.lines: Counter[str] = Counter()
        self.emf_bytes: Counter[str] = Counter()
        self.level_bytes: Counter[str] = Counter()  # Powertools' JSON lines, by level
        self.metrics: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
        self._partial: dict[str, str] = defaultdict(str)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        who = self._who() or "(outside functions)"
        with self._lock:
            self.bytes[who] += len(text.encode("utf-8"))
            buffered = self._partial[who] + text
            *complete, self._partial[who] = buffered.split("\n")
            for line in complete:
                self._line(who, line)
        return len(text)

    def _line(self, who: str, line: str) -> None:
        self.lines[who] += 1
        if '"_aws"' not in line:
            level = re.search(r'"level": ?"([A-Z]+)"', line[:200])
            self.level_bytes[level.group(1) if level else "other"] += len(line.encode()) + 1
            return
        self.emf_bytes[who] += len(line.encode("utf-8")) + 1
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            doc = json.loads(line)
            for directive in doc["_aws"]["CloudWatchMetrics"]:
                for dimensions in directive.get("Dimensions") or [[]]:
                    values = tuple((d, str(doc.get(d, ""))) for d in dimensions)
                    for metric in directive["Metrics"]:
                        self.metrics.add((directive["Namespace"], metric["Name"], values))

    def flush(self) -> None:
        return None


# ---------------------------------------------------------------- the meter


@dataclass
class Invocations:
    count: int = 0
    billed_ms: int = 0
    wall: list[float] = field(default_factory=list)


@dataclass
class Meter:
    """Counts, per caller: calls, billed units, invocations (see the module docstring)."""

    tables: dict[str, TableInfo]
    account_id: str
    region: str
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (who, service.Op)
    units: Counter[tuple[str, str]] = field(default_factory=Counter)  # (who, unit key)
    received: Counter[str] = field(default_factory=Counter)  # messages an SQS poller got
    s3_keys: Counter[str] = field(default_factory=Counter)  # "caller Op key-pattern"
    events: Counter[str] = field(default_factory=Counter)  # PutEvents entries by detail-type
    invocations: dict[str, Invocations] = field(default_factory=lambda: defaultdict(Invocations))
    _undo: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _serial: threading.RLock = field(default_factory=threading.RLock)

    # ------------------------------------------------------------ hooks

    def install(self) -> None:
        from botocore.client import BaseClient

        from local.functions import LocalFunction

        original_call = getattr(BaseClient, "_make_api_call")  # noqa: B009
        meter = self

        def counted(client: BaseClient, operation: str, params: Any) -> Any:
            who = meter.caller()
            if not who:
                return original_call(client, operation, params)
            service = client.meta.service_model.service_name
            before = meter._before(service, operation, params)
            result = original_call(client, operation, params)
            meter._count(who, service, operation, params, result, before)
            return result

        setattr(BaseClient, "_make_api_call", counted)  # noqa: B010
        self._undo.append(lambda: setattr(BaseClient, "_make_api_call", original_call))

        original_invoke = LocalFunction._invoke

        def timed(function: LocalFunction, event: Any) -> Any:
            # One at a time: the workflows' tasks run in the interpreter's threads, and
            # invocations sharing this process's CPU would each be timed with the others'.
            with meter._serial:
                started = time.perf_counter()
                try:
                    return original_invoke(function, event)
                finally:
                    took = time.perf_counter() - started
                    with meter._lock:
                        counts = meter.invocations[function.logical_id]
                        counts.count += 1
                        counts.billed_ms += max(1, math.ceil(took * 1000))
                        counts.wall.append(took)

        LocalFunction._invoke = timed  # type: ignore[method-assign,assignment]
        self._undo.append(lambda: setattr(LocalFunction, "_invoke", original_invoke))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    @staticmethod
    def caller() -> str:
        from local.functions import running_function

        return running_function() or _polling.get()

    @staticmethod
    @contextlib.contextmanager
    def polling(label: str) -> Iterator[None]:
        """Calls in this block are an event source mapping's (billed to the account)."""
        token = _polling.set(label)
        try:
            yield
        finally:
            _polling.reset(token)

    # ------------------------------------------------------------ counting

    def _add(self, who: str, unit: str, amount: float) -> None:
        with self._lock:
            self.units[(who, unit)] += amount  # type: ignore[assignment]

    def _stored(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """The item as moto holds it now, typed (no AWS call)."""
        from moto.dynamodb.models import dynamodb_backends

        try:
            item = dynamodb_backends[self.account_id][self.region].get_item(table, key)
        except Exception:  # no such table or key shape: nothing stored
            return None
        if item is None:
            return None
        attributes: dict[str, Any] = item.to_json()["Attributes"]
        return attributes

    def _key(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        info = self.tables.get(table)
        names = info.keys if info else tuple(item)[:1]
        return {name: item[name] for name in names if name in item}

    def _writes(self, params: Any) -> list[tuple[str, dict[str, Any], dict[str, Any] | None, str]]:
        """(table, key, new item if known, how) of each item a write call touches; how is
        "" (a plain write), "transaction" or "check" (a transaction's ConditionCheck)."""
        found: list[tuple[str, dict[str, Any], dict[str, Any] | None, str]] = []
        if "TransactItems" in params:
            for part in params["TransactItems"]:
                kind, op = next(iter(part.items()))
                item = op.get("Item") if kind == "Put" else None
                key = self._key(op["TableName"], item) if item else dict(op.get("Key", {}))
                how = "check" if kind == "ConditionCheck" else "transaction"
                found.append((op["TableName"], key, item, how))
        elif "RequestItems" in params:  # BatchWriteItem
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        found.append((table, self._key(table, item), item, ""))
                    else:
                        found.append((table, dict(request["DeleteRequest"]["Key"]), None, ""))
        elif "Item" in params:
            item = params["Item"]
            found.append((params["TableName"], self._key(params["TableName"], item), item, ""))
        else:
            found.append((params["TableName"], dict(params.get("Key", {})), None, ""))
        return found

    def _before(self, service: str, operation: str, params: Any) -> Any:
        if service != "dynamodb" or operation not in DYNAMODB_WRITES:
            return None
        return [
            (table, key, new, how, self._stored(table, key))
            for table, key, new, how in self._writes(params)
        ]

    def _count(
        self, who: str, service: str, operation: str, params: Any, result: Any, before: Any
    ) -> None:
        if operation == "ReceiveMessage" and not result.get("Messages") and _polling.get():
            return  # the harness polling an empty queue: idle polls are priced per month
        with self._lock:
            self.calls[(who, f"{service}.{operation}")] += 1
        if service == "dynamodb":
            self.count_dynamodb(who, operation, params, result, before)
        elif service == "sqs":
            if operation == "ReceiveMessage":
                with self._lock:
                    self.received[who] += len(result.get("Messages", []))
            self._add(who, "sqs.requests", self._sqs_requests(operation, params, result))
        elif service == "s3":
            if "Key" in params:
                with self._lock:
                    self.s3_keys[f"{who} {operation} {key_pattern(params['Key'])}"] += 1
            if operation in S3_TIER1:
                self._add(who, "s3.tier1", 1)
            elif operation in S3_TIER2:
                self._add(who, "s3.tier2", 1)
        elif service == "events" and operation == "PutEvents":
            for entry in params.get("Entries", []):
                with self._lock:
                    self.events[str(entry.get("DetailType", "?"))] += 1
                self._add(who, "events.custom", chunks(len(json.dumps(entry)), 64 * 1024))
        elif service == "kms":
            self._add(who, "kms.requests", 1)
        elif service == "sns" and operation in ("Publish", "PublishBatch"):
            self._add(who, "sns.publish", 1)
        elif service == "dynamodbstreams" and operation == "GetRecords":
            self._add(who, "dynamodb.streams", 1)

    @staticmethod
    def _sqs_requests(operation: str, params: Any, result: Any) -> int:
        """SQS bills each 64 KB chunk of a request's payload as one request."""
        if operation == "SendMessage":
            return chunks(len(params.get("MessageBody", "").encode()), SQS_CHUNK)
        if operation == "SendMessageBatch":
            size = sum(len(e.get("MessageBody", "").encode()) for e in params.get("Entries", []))
            return chunks(size, SQS_CHUNK)
        if operation == "ReceiveMessage":
            size = sum(len(m.get("Body", "").encode()) for m in result.get("Messages", []))
            return chunks(size, SQS_CHUNK)
        return 1

    def count_dynamodb(
        self, who: str, operation: str, params: Any, result: Any, before: Any
    ) -> None:
        """Request units of one DynamoDB call (`before`: what _before found)."""
        if operation in DYNAMODB_WRITES:
            for table, key, new, how, old in before:
                if how == "check":
                    # Billed as a transactional write of the item it reads; nothing written.
                    self._add(who, f"dynamodb.wru:{table}", 2 * chunks(item_size(old), 1024))
                    continue
                if new is None and operation in ("UpdateItem", "TransactWriteItems"):
                    new = self._stored(table, key)  # the item as the update left it (or None)
                size = max(item_size(old), item_size(new))
                factor = 2 if how else 1
                self._add(who, f"dynamodb.wru:{table}", factor * chunks(size, 1024))
                for index in self.tables.get(table, TableInfo(())).indexes:
                    self._add(
                        who,
                        f"dynamodb.wru:{table}/{index.name}",
                        index_writes(index, self.tables[table].keys, old, new),
                    )
            return
        if operation not in DYNAMODB_READS:
            return
        consistent = 1.0 if params.get("ConsistentRead") else 0.5
        if operation == "GetItem":
            table = params["TableName"]
            self._add(who, f"dynamodb.rru:{table}", consistent * _read_units(result.get("Item")))
        elif operation in ("Query", "Scan"):
            table = params["TableName"]
            size = sum(item_size(i) for i in result.get("Items", []))
            self._add(who, f"dynamodb.rru:{table}", consistent * chunks(size, 4096))
        elif operation == "BatchGetItem":
            for table, items in result.get("Responses", {}).items():
                wanted = params["RequestItems"].get(table, {})
                weight = 1.0 if wanted.get("ConsistentRead") else 0.5
                for item in items:
                    self._add(who, f"dynamodb.rru:{table}", weight * _read_units(item))
        else:  # TransactGetItems
            for part, got in zip(
                params["TransactItems"], result.get("Responses", []), strict=False
            ):
                table = part["Get"]["TableName"]
                self._add(who, f"dynamodb.rru:{table}", 2 * _read_units(got.get("Item")))


def key_pattern(key: str) -> str:
    """An S3 key with its ids blanked: what kind of object it is."""
    return re.sub(r"[0-9a-f]{8,}|\d+", "#", key)


def _read_units(item: dict[str, Any] | None) -> int:
    return chunks(item_size(item), 4096)


def index_writes(
    index: Index,
    table_keys: tuple[str, ...],
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> int:
    """Writes to one GSI: none if neither image has its key, two if the key changed."""

    def projected(item: dict[str, Any] | None) -> int:
        if not item or not all(k in item for k in index.keys):
            return 0
        if index.projection == "ALL":
            return item_size(item)
        names = set(index.keys) | set(table_keys)
        return item_size({k: v for k, v in item.items() if k in names})

    old_size, new_size = projected(old), projected(new)
    if not old_size and not new_size:
        return 0
    if old_size and new_size:
        assert old is not None
        assert new is not None
        if all(old[k] == new[k] for k in index.keys):
            # Same key: a KEYS_ONLY index is written only when its key changes.
            return chunks(max(old_size, new_size), 1024) if index.projection == "ALL" else 0
        return chunks(old_size, 1024) + chunks(new_size, 1024)
    return chunks(old_size or new_size, 1024)
