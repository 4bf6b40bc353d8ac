"""The outbox relay's batched reads and deletes (BatchGetItem, BatchWriteItem): deletes
DynamoDB leaves unprocessed are sent again, and a postback whose delete never goes
through stays in the outbox and is published again, with its id (at least once)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from local.stack import Stack
from mmsapi.errors import DomainError
from mmsapi.models import SendStatus
from mmsapi.services.announce import send_postback
from mmsapi.store import aws, outbox
from mmsapi.store.outbox import send_postback_id
from tests.conftest import Client
from tests.integration.helpers import postback_events, relay_event
from tests.integration.test_outbox import _answer, _stream_records, a_send, outbox_ids


def _failed_sends(client: Client, *send_ids: int) -> None:
    for send_id in send_ids:
        send = a_send(client, send_id)
        send.status = SendStatus.FAILED
        assert client.ctx.sends.save(
            send, postback=send_postback(send, "E101", "Message Failed", details="refused")
        )


@contextmanager
def unprocessed(times: int) -> Iterator[list[int]]:
    """The first `times` BatchWriteItem calls answered with every request unprocessed
    (nothing done), as DynamoDB answers when throttled; counts every call."""
    calls: list[int] = []
    event = "before-call.dynamodb.BatchWriteItem"

    def hook(params: dict[str, Any], **_: Any) -> Any:
        calls.append(1)
        if len(calls) > times:
            return None
        sent = json.loads(params["body"])  # the serialized request
        return _answer(200, {"UnprocessedItems": sent["RequestItems"]})

    client = aws.dynamodb()
    client.meta.events.register_first(event, hook)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, hook)


def test_deletes_left_unprocessed_are_sent_again(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two postbacks in the outbox, and DynamoDB leaving every delete of the first
    # BatchWriteItem unprocessed (throttled)
    monkeypatch.setattr(outbox, "_UNPROCESSED_PAUSE", 0.0)
    _failed_sends(client, 7101, 7102)
    with unprocessed(times=1) as calls:
        # When the relay runs
        assert relay_event({"Records": _stream_records(stack)}) == {"batchItemFailures": []}
    # Then it sent the deletes again, and both left the outbox, each published once
    assert len(calls) == 2
    assert outbox_ids(stack) == []
    assert sorted(e["postback_id"] for e in postback_events(stack)) == [
        send_postback_id(7101, "E101"),
        send_postback_id(7102, "E101"),
    ]


def test_a_delete_never_processed_fails_the_batch_and_the_postback_goes_again(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a postback in the outbox, and DynamoDB never processing its delete
    monkeypatch.setattr(outbox, "_UNPROCESSED_PAUSE", 0.0)
    _failed_sends(client, 7103)
    records = _stream_records(stack)
    with (
        unprocessed(times=100) as calls,
        pytest.raises(DomainError, match="unprocessed"),
    ):
        relay_event({"Records": records})  # the batch fails: Lambda retries it
    assert len(calls) == outbox._UNPROCESSED_TRIES
    assert outbox_ids(stack) == [send_postback_id(7103, "E101")]
    # When Lambda retries the batch
    assert relay_event({"Records": records}) == {"batchItemFailures": []}
    # Then the postback was published twice with one id, and is gone from the outbox
    events = postback_events(stack)
    assert [e["postback_id"] for e in events] == [send_postback_id(7103, "E101")] * 2
    assert outbox_ids(stack) == []
