"""A conditional create whose answer was lost is retried by botocore and then meets its
own write: the store must take that as success, not as a clash (E503 at the API).

The check must not read the table: ApiFunction may write sends but not read them, so
the refusal itself carries the stored item (ReturnValuesOnConditionCheckFailure).
"""

from __future__ import annotations

import pytest

from local.aws_gate import acting_as
from local.stack import Stack
from mmsapi.errors import DomainError
from mmsapi.store import dynamo


def _send(send_id: str, account: str) -> dict[str, dict[str, str]]:
    return {"send_id": {"N": send_id}, "account_id": {"S": account}}


def test_creating_the_same_item_twice_is_one_create(stack: Stack) -> None:
    # Given a send whose first write landed (its answer lost on the way back)
    table = stack.physical["SendsTable"]
    with acting_as("ApiFunction"):
        dynamo.create_item(table, _send("7001", "a1"), "send_id", what="send")
        # When the retry writes it again, Then it is the same create, not an error,
        # and the function that may only write sends was not refused a read
        dynamo.create_item(table, _send("7001", "a1"), "send_id", what="send")
    assert dynamo.get_item(table, {"send_id": {"N": "7001"}}, what="send") == _send("7001", "a1")


def test_another_item_under_the_same_key_is_still_refused(stack: Stack) -> None:
    table = stack.physical["SendsTable"]
    with acting_as("ApiFunction"):
        dynamo.create_item(table, _send("7002", "a1"), "send_id", what="send")
        with pytest.raises(DomainError, match="exists already"):
            dynamo.create_item(table, _send("7002", "a2"), "send_id", what="send")
