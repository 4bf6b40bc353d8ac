"""DynamoDB idioms the stores share: consistent keyed reads, conditional puts, transactions.

No point lookup goes through a GSI: GSIs are eventually consistent on AWS, so an item
found by another key has its own lookup table, written in the same transaction.

Every failure becomes a DomainError named after `what` the store was doing
("send write failed: ..."), so that no botocore error leaves the stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.store import aws

CONDITION_FAILED: Final = "ConditionalCheckFailedException"
TRANSACTION_CANCELED: Final = "TransactionCanceledException"


def get_item(table: str, key: Mapping[str, Any], *, what: str) -> dict[str, Any] | None:
    """The item with this key (a consistent read), or None."""
    try:
        found = aws.dynamodb().get_item(TableName=table, Key=key, ConsistentRead=True)
    except ClientError as exc:
        raise DomainError(f"{what} read failed: {exc}") from exc
    return found.get("Item")


# BatchGetItem takes at most 100 keys per call.
_BATCH_KEYS: Final = 100


def batch_get(
    table: str, keys: Sequence[Mapping[str, Any]], *, what: str, projection: str = ""
) -> list[dict[str, Any]]:
    """The items with these keys (consistent reads), in no particular order; missing
    keys are left out. Keys the service leaves unprocessed are asked again."""
    found: list[dict[str, Any]] = []
    extra = {"ProjectionExpression": projection} if projection else {}
    for start in range(0, len(keys), _BATCH_KEYS):
        pending: list[Mapping[str, Any]] = list(keys[start : start + _BATCH_KEYS])
        while pending:
            request = {table: {"Keys": pending, "ConsistentRead": True, **extra}}
            try:
                answer: Any = aws.dynamodb().batch_get_item(RequestItems=request)  # type: ignore[arg-type]
            except ClientError as exc:
                raise DomainError(f"{what} read failed: {exc}") from exc
            found.extend(answer.get("Responses", {}).get(table, []))
            pending = list(answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
    return found


def put_item(table: str, item: Mapping[str, Any], *, what: str, **condition: Any) -> bool:
    """Put one item, if `condition` (ConditionExpression with its names and values) holds.

    False when the condition fails (another writer got there first); DomainError
    for any other failure. Without a condition, True.
    """
    try:
        aws.dynamodb().put_item(TableName=table, Item=item, **condition)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == CONDITION_FAILED:
            return False
        raise DomainError(f"{what} write failed: {exc}") from exc
    return True


def create_item(table: str, item: Mapping[str, Any], key: str, *, what: str) -> None:
    """Put a new item; DomainError if another item with its `key` attribute exists already.

    A write whose answer was lost (a read timeout) is retried by botocore and then fails
    its own condition: finding exactly this item stored means the first attempt landed.
    The refusal carries the stored item (ReturnValuesOnConditionCheckFailure), so the
    writer needs no read grant on the table and spends no read.
    """
    try:
        aws.dynamodb().put_item(
            TableName=table,
            Item=item,
            ConditionExpression=f"attribute_not_exists({key})",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != CONDITION_FAILED:
            raise DomainError(f"{what} write failed: {exc}") from exc
        if exc.response.get("Item") != dict(item):
            raise DomainError(f"{what} write failed: the {key} exists already") from exc


def delete_item(table: str, key: Mapping[str, Any], *, what: str) -> None:
    """Delete the item with this key (no error if there is none)."""
    try:
        aws.dynamodb().delete_item(TableName=table, Key=key)
    except ClientError as exc:
        raise DomainError(f"{what} delete failed: {exc}") from exc


def transact_write(items: Sequence[Mapping[str, Any]], *, what: str) -> bool:
    """Write items ({"Put": ...}, {"Delete": ...}) all or none (TransactWriteItems).

    False when a condition of one of them fails; DomainError for any other failure
    (IAM: each part needs its own action, e.g. dynamodb:PutItem on its table).
    """
    try:
        aws.dynamodb().transact_write_items(TransactItems=list(items))  # type: ignore[arg-type]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == TRANSACTION_CANCELED:
            reasons = exc.response.get("CancellationReasons", [])
            if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                return False
        raise DomainError(f"{what} write failed: {exc}") from exc
    return True


def transact_write_failed(items: Sequence[Mapping[str, Any]], *, what: str) -> list[int]:
    """transact_write, telling which parts' conditions failed: their indexes (empty:
    all were written). A retried call whose first attempt landed succeeds (botocore
    gives the call one ClientRequestToken for all its attempts)."""
    try:
        aws.dynamodb().transact_write_items(TransactItems=list(items))  # type: ignore[arg-type]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == TRANSACTION_CANCELED:
            reasons = exc.response.get("CancellationReasons", [])
            failed = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
            if failed:
                return failed
        raise DomainError(f"{what} write failed: {exc}") from exc
    return []
