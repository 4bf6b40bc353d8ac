"""DynamoDB idioms the stores share: keyed reads, single-item index lookups, conditional puts.

Every failure becomes a DomainError named after `what` the store was doing
("send write failed: ..."), so that no botocore error leaves the stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.store import aws

CONDITION_FAILED: Final = "ConditionalCheckFailedException"


def get_item(table: str, key: Mapping[str, Any], *, what: str) -> dict[str, Any] | None:
    """The item with this key (a consistent read), or None."""
    try:
        found = aws.dynamodb().get_item(TableName=table, Key=key, ConsistentRead=True)
    except ClientError as exc:
        raise DomainError(f"{what} read failed: {exc}") from exc
    return found.get("Item")


def query_one(
    table: str, index: str, attribute: str, value: str, *, what: str
) -> dict[str, Any] | None:
    """The first item of an index whose key `attribute` is the string `value`, or None."""
    try:
        found = aws.dynamodb().query(
            TableName=table,
            IndexName=index,
            KeyConditionExpression=f"{attribute} = :v",
            ExpressionAttributeValues={":v": {"S": value}},
            Limit=1,
        )
    except ClientError as exc:
        raise DomainError(f"{what} lookup failed: {exc}") from exc
    items = found.get("Items", [])
    return items[0] if items else None


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
    """Put a new item; DomainError if an item with its `key` attribute exists already."""
    if not put_item(table, item, what=what, ConditionExpression=f"attribute_not_exists({key})"):
        raise DomainError(f"{what} write failed: the {key} exists already")
