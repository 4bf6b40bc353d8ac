"""The emulator's DynamoDB behaves as AWS's where the product depends on it
(local/dynamodb.py): all-or-nothing transactions that copy only what they touch, and
conditional writes that are atomic when warm functions race."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table

from local.stack import Stack
from mmsapi.store import aws


# The outbox table has a stream: a transaction refused must add no record to it.
def _put(table: str, key: int, account: str = "a1") -> Any:
    return {"Put": {"TableName": table, "Item": _item(key, account)}}


def _item(key: int, account: str = "a1") -> dict[str, Any]:
    return {"id": {"S": str(key)}, "account_id": {"S": account}}


def _key(key: int) -> Any:
    return {"id": {"S": str(key)}}


def _stream_records(stack: Stack, table: str) -> int:
    """What the emulator's stream of the table holds (the state under test)."""
    shard = dynamodb_backends[stack.account_id][stack.region].tables[table].stream_shard
    assert shard is not None
    return len(shard.items)


def test_a_refused_condition_writes_nothing_and_returns_the_stored_item(stack: Stack) -> None:
    table = stack.physical["OutboxTable"]
    aws.dynamodb().put_item(TableName=table, Item=_item(2, "owner"))
    before = _stream_records(stack, table)
    refused: Any = {
        "Put": {
            **_put(table, 2)["Put"],
            "ConditionExpression": "attribute_not_exists(id)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    with pytest.raises(ClientError) as failed:
        aws.dynamodb().transact_write_items(TransactItems=[_put(table, 1), refused])
    reasons = failed.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"] == _item(2, "owner")
    # Nothing of the transaction was written, not even to the stream
    assert "Item" not in aws.dynamodb().get_item(TableName=table, Key=_key(1))
    assert _stream_records(stack, table) == before


def test_a_part_that_fails_while_writing_undoes_the_parts_before_it(stack: Stack) -> None:
    table = stack.physical["OutboxTable"]
    aws.dynamodb().put_item(TableName=table, Item=_item(3, "kept"))
    before = _stream_records(stack, table)
    # The update's expression adds a number to a string: refused only when applied
    bad_update = {
        "Update": {
            "TableName": table,
            "Key": _key(3),
            "UpdateExpression": "ADD account_id :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    with pytest.raises(ClientError):
        aws.dynamodb().transact_write_items(TransactItems=[_put(table, 4), bad_update])  # type: ignore[list-item]
    assert "Item" not in aws.dynamodb().get_item(TableName=table, Key=_key(4))
    got = aws.dynamodb().get_item(TableName=table, Key=_key(3))["Item"]
    assert got == _item(3, "kept")
    assert _stream_records(stack, table) == before


def test_a_transaction_copies_no_table(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's own copies each named table whole (every item, every stream record)
    table = stack.physical["OutboxTable"]
    for send_id in range(10, 60):
        aws.dynamodb().put_item(TableName=table, Item=_item(send_id))
    copied: list[str] = []
    original = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        copied.append(type(value).__name__)
        return original(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    aws.dynamodb().transact_write_items(TransactItems=[_put(table, 61), _put(table, 62)])
    assert Table.__name__ not in copied
    assert "Item" in aws.dynamodb().get_item(TableName=table, Key=_key(62))


def test_racing_conditional_creates_have_one_winner_each(stack: Stack) -> None:
    table = stack.physical["OutboxTable"]
    wins: list[int] = []

    def create_all(account: str) -> None:
        for send_id in range(100, 160):
            try:
                aws.dynamodb().put_item(
                    TableName=table,
                    Item=_item(send_id, account),
                    ConditionExpression="attribute_not_exists(id)",
                )
                wins.append(send_id)
            except ClientError:
                pass

    threads = [threading.Thread(target=create_all, args=(f"f{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == list(range(100, 160))


def test_a_transaction_repeated_with_its_token_is_applied_once(stack: Stack) -> None:
    # Given a conditional create written in a transaction whose answer was lost
    table = stack.physical["OutboxTable"]
    create: Any = {
        "Put": {**_put(table, 7)["Put"], "ConditionExpression": "attribute_not_exists(id)"}
    }
    token = "lost-answer-0001"
    aws.dynamodb().transact_write_items(TransactItems=[create], ClientRequestToken=token)
    records = _stream_records(stack, table)
    # When it is sent again with the same token (botocore's retry of the same call)
    aws.dynamodb().transact_write_items(TransactItems=[create], ClientRequestToken=token)
    # Then it succeeds, as on AWS, without being applied again (no second stream record)
    assert _stream_records(stack, table) == records
    # And without the token, or with the token and other items, it is refused
    with pytest.raises(ClientError) as again:
        aws.dynamodb().transact_write_items(TransactItems=[create], ClientRequestToken="new-1")
    assert again.value.response["Error"]["Code"] == "TransactionCanceledException"
    with pytest.raises(ClientError) as other:
        aws.dynamodb().transact_write_items(
            TransactItems=[_put(table, 8)], ClientRequestToken=token
        )
    assert other.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
