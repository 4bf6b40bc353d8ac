"""Where moto's DynamoDB differs from AWS in ways this product depends on, made right.

- Atomic writes. DynamoDB applies each call to an item atomically; moto reads, checks
  the condition and writes in Python, so two threads (two warm functions of the local
  runtime, or racing tests) can both pass one condition. One lock around every item
  operation makes each call atomic, as DynamoDB does.
- Transactions cost what they touch. moto deep-copies every table a transaction names
  (with every stream record) to roll back on a failure: on a table of a few thousand
  sends each transaction costs megabytes and tens of milliseconds, so a long run slows
  and grows quadratically. Here the conditions are checked first, nothing is written
  unless all hold (as on AWS), and a write that still fails restores only the items
  it touched and the stream records it added.
- Idempotent transactions. A TransactWriteItems repeated with its ClientRequestToken
  within 10 minutes succeeds without being applied again (botocore gives a call one
  token for all its attempts, so a retry after a lost answer is not refused by the
  conditions its first attempt made true); the same token with other items is refused
  (IdempotentParameterMismatchException). moto ignores the token.

install() is idempotent and process-wide (moto's backend classes are patched).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from moto.core.responses import ActionResult
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    DynamodbException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

ITEM_OPERATIONS: Final = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "batch_get_item",
    "transact_write_items",
    "transact_get_items",
)
_LOCK = threading.RLock()
_installed = False
# ClientRequestToken -> (digest of the TransactItems, when applied): AWS keeps 10 minutes.
TOKEN_SECONDS: Final = 600.0
_tokens: dict[str, tuple[str, float]] = {}


def install() -> None:
    """Patch moto's DynamoDB backend (once per process)."""
    global _installed
    with _LOCK:
        if _installed:
            return
        DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
        DynamoHandler.transact_write_items = _idempotent(  # type: ignore[method-assign,assignment]
            DynamoHandler.transact_write_items
        )
        for name in ITEM_OPERATIONS:
            if hasattr(DynamoDBBackend, name):
                setattr(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name)))
        _installed = True


class IdempotentParameterMismatchError(DynamodbException):
    def __init__(self) -> None:
        super().__init__(
            "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            "The request uses the same client token as a previous, but non-identical request.",
        )


def _idempotent(
    handler: Callable[[DynamoHandler], ActionResult],
) -> Callable[[DynamoHandler], ActionResult]:
    def transact_write_items(self: DynamoHandler) -> ActionResult:
        token = self.body.get("ClientRequestToken")
        if not token:
            return handler(self)
        items = json.dumps(self.body["TransactItems"], sort_keys=True, default=repr).encode()
        digest = hashlib.sha256(items).hexdigest()
        with _LOCK:
            now = time.monotonic()
            for old in [t for t, (_, at) in _tokens.items() if now - at > TOKEN_SECONDS]:
                del _tokens[old]
            seen = _tokens.get(token)
            if seen is not None:
                if seen[0] != digest:
                    raise IdempotentParameterMismatchError()
                return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
            answer = handler(self)  # raises when cancelled: then nothing is remembered
            _tokens[token] = (digest, now)
            return answer

    transact_write_items.__wrapped__ = handler  # type: ignore[attr-defined]
    return transact_write_items


def _atomic(operation: Any) -> Any:
    def atomic(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return operation(*args, **kwargs)

    atomic.__wrapped__ = operation  # type: ignore[attr-defined]
    return atomic


def _key_of(table: Table, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _check(backend: DynamoDBBackend, items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]]:
    """Every part's condition against the stored items, as moto reports them."""
    seen: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []
    for item in items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            errors.append(("ValueError", "Unsupported transaction operation", None))
            continue
        table = backend.get_table(op["TableName"])
        key = _key_of(table, op_type, op)
        identity = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        condition = op.get("ConditionExpression")
        current = backend.get_item(op["TableName"], key)
        if condition is not None:
            expression = get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            )
            if not expression.expr(current):
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                errors.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
                continue
        errors.append((None, None, None))
    return errors


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    errors = _check(self, transact_items)
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    undo = _Undo(self)
    try:
        for item in transact_items:
            op_type, op = next(iter(item.items()))
            if op_type == "ConditionCheck":
                continue
            table_name = op["TableName"]
            undo.remember(table_name, _key_of(self.get_table(table_name), op_type, op))
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, op["Key"])
            else:
                self.update_item(
                    table_name,
                    op["Key"],
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=op.get("ExpressionAttributeNames"),
                    expression_attribute_values=op.get("ExpressionAttributeValues"),
                )
    except Exception:
        undo.roll_back()
        raise


class _Undo:
    """The touched items as they were, and each stream's length: all or nothing."""

    def __init__(self, backend: DynamoDBBackend) -> None:
        self.backend = backend
        self.items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = []
        self.streams: dict[str, int] = {}

    def remember(self, table_name: str, key: dict[str, Any]) -> None:
        table = self.backend.get_table(table_name)
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        current = table.get_item(hash_key, range_key)
        self.items.append((table, hash_key, range_key, copy.deepcopy(current)))
        if table.stream_shard is not None:
            self.streams.setdefault(table_name, len(table.stream_shard.items))

    def roll_back(self) -> None:
        for table, hash_key, range_key, before in reversed(self.items):
            if range_key is None:
                if before is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = before  # type: ignore[assignment]
            elif before is None:
                table.items.get(hash_key, {}).pop(range_key, None)
            else:
                table.items[hash_key][range_key] = before
        for table_name, length in self.streams.items():
            shard = self.backend.get_table(table_name).stream_shard
            if shard is not None:
                del shard.items[length:]
