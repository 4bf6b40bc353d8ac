"""No lost or doubled postback: the outbox (issue 8, item 4).

Each postback is written in the transaction of its state change and relayed to the bus
by OutboxFunction (the outbox table's stream), at least once, with the same id. Faults
are injected with botocore before-call hooks on the product's own clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from local.stack import Stack
from local.streams import StreamReader, stream_sources
from mmsapi.errors import DomainError
from mmsapi.models import Send, SendStatus
from mmsapi.services.announce import send_postback
from mmsapi.services.deliver import deliver
from mmsapi.services.postback import ID_HEADER, postback_id
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.outbox import send_postback_id, template_postback_id
from tests.conftest import Client, load_event
from tests.integration.helpers import (
    answer,
    drain,
    postback_events,
    relay_event,
    relay_outbox,
)
from tests.lambda_context import FakeLambdaContext, load_handler_module

TEXT_ONLY = (
    "<request><action>saveMMS</action><api-key>{key}</api-key>"
    "<message-subject>s</message-subject><name>n</name>"
    "<slide><message-text>Hello</message-text></slide></request>"
)


class _Body:
    def stream(self, **_: Any) -> Iterator[bytes]:
        return iter(())


def _answer(status: int, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    meta = {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0, "RequestId": "x"}
    response = AWSResponse("https://fault.local/", status, HTTPHeaders(), _Body())
    return response, {**parsed, "ResponseMetadata": meta}


PUT_EVENTS_REFUSED = _answer(
    400, {"Error": {"Code": "AccessDeniedException", "Message": "injected: PutEvents refused"}}
)
ONE_ENTRY_FAILED = _answer(
    200,
    {
        "FailedEntryCount": 1,
        "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected"}],
    },
)


@contextmanager
def fault(client: Any, operation: str, answer_with: Callable[[], Any]) -> Iterator[list[int]]:
    """Answer every `operation` call of `client` with answer_with() (None: let it through).
    Yields a list that counts the calls."""
    calls: list[int] = []
    event = f"before-call.{client.meta.service_model.service_name}.{operation}"

    def hook(**_: Any) -> Any:
        calls.append(1)
        return answer_with()

    client.meta.events.register_first(event, hook)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, hook)


def outbox_ids(stack: Stack) -> list[str]:
    table = stack.physical["OutboxTable"]
    return sorted(i["id"]["S"] for i in aws.dynamodb().scan(TableName=table)["Items"])


def a_send(client: Client, send_id: int = 7001) -> Send:
    send = Send(
        send_id=send_id,
        account_id=client.account.account_id,
        mms_id=1,
        to="14044790000",
        sender="28444",
        requested_from="28444",
        service_id="12345",
    )
    client.ctx.sends.create(send)
    return send


def test_a_saved_template_is_told_even_when_put_events_fails(client: Client, stack: Stack) -> None:
    # Given EventBridge refusing every PutEvents
    with fault(aws.events(), "PutEvents", lambda: PUT_EVENTS_REFUSED):
        # When a ready template is saved, and the relay runs meanwhile
        got = answer(client.post(TEXT_ONLY.format(key=client.api_key)))
        assert got["status"] == "Success", got
        relayed = relay_outbox(stack)
        # Then the state change stands and its postback waits in the outbox, not lost
        mms_id = int(got["mms-id"])
        assert relayed >= 1
        assert outbox_ids(stack) == [template_postback_id(mms_id, "N003")]
    # When EventBridge is back
    events = postback_events(stack)
    # Then N003 is delivered once, with its stable id, and leaves the outbox
    assert [(e["detail"]["code"], e["postback_id"]) for e in events] == [
        ("N003", template_postback_id(mms_id, "N003"))
    ]
    assert outbox_ids(stack) == []


def test_a_send_that_ends_while_put_events_fails_is_told_later_with_the_same_id(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queued send, a stack without an MMSC, and PutEvents failing per entry
    send = a_send(client)
    monkeypatch.setenv("MMS_MM7_URL", "")
    get_settings.cache_clear()
    with fault(aws.events(), "PutEvents", lambda: ONE_ENTRY_FAILED) as calls:
        # When the send ends (E101) and the relay tries twice
        assert deliver(client.ctx, send.send_id) == "failed: carrier not provisioned"
        relay_outbox(stack)
        relay_outbox(stack)
        # Then the entry that failed (FailedEntryCount 1) is not deleted from the outbox
        assert len(calls) == 2
        assert outbox_ids(stack) == [send_postback_id(send.send_id, "E101")]
    stored = client.ctx.sends.get(send.send_id)
    assert stored is not None
    assert stored.status is SendStatus.FAILED
    # When PutEvents works again
    events = postback_events(stack)
    # Then E101 arrives, with the id derived from the send and the code
    assert [(e["detail"]["code"], e["postback_id"]) for e in events] == [
        ("E101", send_postback_id(send.send_id, "E101"))
    ]


def test_a_relay_that_dies_after_publishing_publishes_again_with_the_same_id(
    client: Client, stack: Stack
) -> None:
    # Given a postback in the outbox, and the relay unable to delete it once published
    send = a_send(client)
    send.status = SendStatus.FAILED
    assert client.ctx.sends.save(
        send, postback=send_postback(send, "E999", "Message Failed", details="gave up")
    )
    records = _stream_records(stack)
    refused = _answer(500, {"Error": {"Code": "InternalServerError", "Message": "injected"}})
    with fault(aws.dynamodb(), "BatchWriteItem", lambda: refused), pytest.raises(DomainError):
        relay_event({"Records": records})  # the batch fails: Lambda will retry it
    # When Lambda retries the batch
    relay_event({"Records": records})
    # Then the postback was published twice, with one id: at least once, never two ids
    events = postback_events(stack)
    assert [e["postback_id"] for e in events] == [send_postback_id(send.send_id, "E999")] * 2
    assert outbox_ids(stack) == []


def test_a_retried_batch_skips_what_it_published_already(client: Client, stack: Stack) -> None:
    # Given two postbacks relayed once
    for send_id in (7001, 7002):
        send = a_send(client, send_id)
        send.status = SendStatus.FAILED
        client.ctx.sends.save(
            send, postback=send_postback(send, "E101", "Message Failed", details="refused")
        )
    records = _stream_records(stack)
    assert relay_event({"Records": records}) == {"batchItemFailures": []}
    # When the same batch comes again (Lambda retries a batch after a timeout)
    with fault(aws.events(), "PutEvents", lambda: None) as calls:
        relay_event({"Records": records})
    # Then nothing is published again: each postback reached the bus once
    assert calls == []
    assert sorted(e["postback_id"] for e in postback_events(stack)) == [
        send_postback_id(7001, "E101"),
        send_postback_id(7002, "E101"),
    ]


def test_a_state_change_that_is_refused_writes_no_postback(client: Client, stack: Stack) -> None:
    # Given a queued send
    send = a_send(client)
    # When a worker that thinks it is submitting fails it, with its postback
    send.status = SendStatus.FAILED
    saved = client.ctx.sends.save(
        send,
        expected=SendStatus.SUBMITTING,
        postback=send_postback(send, "E999", "Message Failed", details="gave up"),
    )
    # Then neither the state nor the postback is written
    assert saved is False
    stored = client.ctx.sends.get(send.send_id)
    assert stored is not None
    assert stored.status is SendStatus.QUEUED
    assert outbox_ids(stack) == []
    assert postback_events(stack) == []


def test_a_transaction_that_fails_writes_neither_state_nor_postback(
    client: Client, stack: Stack
) -> None:
    # Given a queued send, and DynamoDB failing its next transaction
    send = a_send(client)
    send.status = SendStatus.FAILED
    refused = _answer(500, {"Error": {"Code": "InternalServerError", "Message": "injected"}})
    with (
        fault(aws.dynamodb(), "TransactWriteItems", lambda: refused),
        pytest.raises(DomainError),
    ):
        client.ctx.sends.save(
            send, postback=send_postback(send, "E101", "Message Failed", details="refused")
        )
    # Then the send is still queued and no postback waits
    stored = client.ctx.sends.get(send.send_id)
    assert stored is not None
    assert stored.status is SendStatus.QUEUED
    assert outbox_ids(stack) == []


def test_the_postback_id_header_is_the_outbox_id_on_every_relay() -> None:
    # Given the same postback relayed twice: two EventBridge events, two event ids
    detail = {"code": "N101", "account_id": "a", "fields": {}, "postback_id": "send-1-N101"}
    first = {"id": "11111111-aaaa", "detail": detail}
    second = {"id": "22222222-bbbb", "detail": detail}
    # Then both carry one X-MMS-Postback-Id, and an event from before the outbox keeps its id
    assert postback_id(first) == postback_id(second) == "send-1-N101"
    assert postback_id({"id": "33333333-cccc", "detail": {"code": "N003"}}) == "33333333-cccc"
    assert ID_HEADER == "X-MMS-Postback-Id"


def test_outbox_function_publishes_its_event_file_and_ignores_removals(
    client: Client, stack: Stack
) -> None:
    # Given the outbox item that events/outbox/n003.json's INSERT record names
    event = load_event("outbox/n003.json")
    image = event["Records"][0]["dynamodb"]["NewImage"]
    aws.dynamodb().put_item(TableName=stack.physical["OutboxTable"], Item=image)
    # When OutboxFunction's handler gets the batch (an INSERT, then a REMOVE)
    result = load_handler_module("outbox").handler(event, FakeLambdaContext())
    # Then the batch succeeds, N003 is on the bus once with the item's id, the item is gone
    assert result == {"batchItemFailures": []}
    events = postback_events(stack)
    assert [(e["detail-type"], e["postback_id"]) for e in events] == [
        ("TemplateReady", "template-100001-N003")
    ]
    assert events[0]["detail"]["fields"] == {"mms-id": "100001", "client-reference": "camp-1"}
    assert outbox_ids(stack) == []


def _stream_records(stack: Stack) -> list[dict[str, Any]]:
    """The outbox stream's records so far, as Lambda hands them to OutboxFunction."""
    [source] = [
        s
        for s in stream_sources(stack)
        if s.function == "OutboxFunction" and s.table == stack.physical["OutboxTable"]
    ]
    records = StreamReader(source, stack.region).read(nullcontext)
    return [record for _, record in records]


def test_a_queue_send_item_left_by_an_earlier_version_is_still_relayed(
    client: Client, stack: Stack
) -> None:
    # Given a "queue send" outbox item, as sends were queued before their writes were marked
    item = {
        "id": {"S": "queue-send-4242"},
        "kind": {"S": "queue-send"},
        "send_id": {"N": "4242"},
        "ids": {"S": '{"account":"demo","mms_id":7}'},
        "expires_at": {"N": str(int(time.time()) + 86_400)},
    }
    aws.dynamodb().put_item(TableName=client.ctx.outbox.table, Item=item)
    # When the relay runs, Then the send is on the send queue and the item is gone
    relay_outbox(stack)
    assert [m["send_id"] for m in drain(stack.physical["SendQueue"])] == [4242]
    assert not client.ctx.outbox.pending("queue-send-4242")
