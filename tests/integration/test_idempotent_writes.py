"""A conditional create whose answer was lost is retried by botocore and then meets its
own write: the store must take that as success, not as a clash (E503 at the API)."""

from __future__ import annotations

import pytest

from local.stack import Stack
from mmsapi.errors import DomainError
from mmsapi.store import dynamo


def test_creating_the_same_item_twice_is_one_create(stack: Stack) -> None:
    # Given an item whose first write landed (its answer lost on the way back)
    table = stack.physical["ApiKeysTable"]
    item = {"key_hash": {"S": "retried"}, "account_id": {"S": "a1"}}
    dynamo.create_item(table, item, "key_hash", what="key")
    # When the retry writes it again, Then it is the same create, not an error
    dynamo.create_item(table, item, "key_hash", what="key")
    assert dynamo.get_item(table, {"key_hash": {"S": "retried"}}, what="key") == item


def test_another_item_under_the_same_key_is_still_refused(stack: Stack) -> None:
    table = stack.physical["ApiKeysTable"]
    dynamo.create_item(
        table, {"key_hash": {"S": "taken"}, "account_id": {"S": "a1"}}, "key_hash", what="k"
    )
    with pytest.raises(DomainError, match="exists already"):
        dynamo.create_item(
            table, {"key_hash": {"S": "taken"}, "account_id": {"S": "a2"}}, "key_hash", what="k"
        )
