"""A warm sendSavedMMS makes one AWS call, and gives up none of its promises for it.

The account comes from a copy under 0.5 s old, the ready template from the function's
copy, and the send is one TransactWriteItems: the send, the check that its template is
still stored and ready, and its "queue send" outbox item, which the outbox relay puts on
the send queue (services/send.py, services/outbox.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from local.aws_gate import acting_as
from local.stack import Stack
from local.streams import StreamReader, stream_sources
from mmsapi.deadlines import MARGIN_SECONDS, queued_seconds
from mmsapi.errors import DomainError
from mmsapi.models import Account, SendStatus
from mmsapi.services.accounts import create_account
from mmsapi.services.context import Context
from mmsapi.services.sweep import sweep
from mmsapi.store.accounts import AccountStore
from mmsapi.store.outbox import queue_id
from mmsapi.store.sends import SendQueue
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.helpers import (
    RELAY,
    answer,
    drain,
    postback_events,
    relay_event,
    relay_outbox,
)

SAVE = (
    "<request><action>saveMMS</action><api-key>{key}</api-key><name>n</name>"
    "<message-subject>Hi</message-subject><slide><message-text>Hello</message-text></slide>"
    "</request>"
)
SEND = (
    "<request><action>sendSavedMMS</action><api-key>{key}</api-key><mms-id>{mms_id}</mms-id>"
    "<to>14044790000</to><from>28444</from><service-id>12345</service-id>"
    "<fallback-sms-text>see</fallback-sms-text></request>"
)
DELETE = (
    "<request><action>deleteMMSID</action><api-key>{key}</api-key><mms-id>{mms_id}</mms-id>"
    "</request>"
)
LIST = "<request><action>getMMSTemplates</action><api-key>{key}</api-key></request>"


def saved(client: Client) -> str:
    got = answer(client.post(SAVE.format(key=client.api_key)))
    assert got["status"] == "Success", got
    return got["mms-id"]


def send(client: Client, mms_id: str) -> dict[str, str]:
    return answer(client.post(SEND.format(key=client.api_key, mms_id=mms_id)))


def queued(stack: Stack) -> list[int]:
    """The send ids on the send queue (taken out of it)."""
    return [int(body["send_id"]) for body in drain(stack.physical["SendQueue"])]


def outbox_records(stack: Stack) -> list[dict[str, Any]]:
    """The outbox stream's records as Lambda hands them over (not marked done)."""
    [source] = [s for s in stream_sources(stack) if s.function == RELAY]
    reader = StreamReader(source, stack.region)
    return [record for _, record in reader.read(lambda: acting_as(RELAY))]


def within_one_second(request: Callable[[], dict[str, str]], expected: str) -> float:
    """Repeat `request` until its answer has `expected` as its code; the seconds it took
    (fails past 1 s)."""
    started = time.monotonic()
    while True:
        got = request()
        if got.get("error-code", got.get("status")) == expected:
            return time.monotonic() - started
        assert time.monotonic() - started < 1.0, got
        time.sleep(0.1)


def test_a_warm_send_is_one_call_and_reaches_the_queue_through_the_outbox(
    client: Client, stack: Stack
) -> None:
    # Given a warm function that has sent a template once (account and template read)
    mms_id = saved(client)
    assert send(client, mms_id)["status"] == "Success"
    relay_outbox(stack)
    drain(stack.physical["SendQueue"])
    # When it sends again
    from benchmarks.aws_calls import counting

    with counting() as calls:
        got = send(client, mms_id)
    # Then the send is one TransactWriteItems (no template read, no SQS call; the
    # account's copy and rate-limit leases are renewed now and then: the benchmark
    # counts them), and the send is stored, then queued by the relay
    assert got["status"] == "Success", got
    assert calls["dynamodb.TransactWriteItems"] == 1
    assert calls["dynamodb.PutItem"] == calls["sqs.SendMessage"] == 0
    send_id = parse_tracking_id(got["tracking-id"])
    assert send_id is not None
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.QUEUED
    assert queued(stack) == []  # not by the API: by the relay
    relay_outbox(stack)
    assert queued(stack) == [send_id]
    assert not client.ctx.outbox.pending(queue_id(send_id))  # the relay is done with it


def test_a_deleted_template_is_never_sent_even_when_cached(client: Client, stack: Stack) -> None:
    # Given a warm function that holds the ready template
    mms_id = saved(client)
    assert send(client, mms_id)["status"] == "Success"
    assert client.ctx.templates.cache.get(int(mms_id)) is not None
    # When another warm function deletes it
    other = Client(Context(), client.api_key, client.account, client.source_ip)
    assert answer(other.post(DELETE.format(key=client.api_key, mms_id=mms_id)))["status"] == (
        "Success"
    )
    relay_outbox(stack)
    assert len(queued(stack)) == 1  # the first send
    # Then the warm copy sends nothing: E241, the copy dropped, no send stored or queued
    got = send(client, mms_id)
    assert got["error-code"] == "E241", got
    assert client.ctx.templates.cache.get(int(mms_id)) is None
    relay_outbox(stack)
    assert queued(stack) == []


def test_a_send_racing_a_deletion_commits_first_or_is_refused(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a send whose checks passed on the warm copy
    mms_id = saved(client)
    assert send(client, mms_id)["status"] == "Success"
    original = client.ctx.templates.ready_check

    def deleted_meanwhile(mms: int, account_id: str) -> dict[str, Any]:
        # When the template is marked deleting between the checks and the send's write
        assert Context().templates.mark_deleting(mms, account_id)
        return original(mms, account_id)

    monkeypatch.setattr(client.ctx.templates, "ready_check", deleted_meanwhile)
    # Then the send is refused (the deletion came first), and nothing is stored
    got = send(client, mms_id)
    assert got["error-code"] == "E241", got
    monkeypatch.undo()
    relay_outbox(stack)
    assert len(queued(stack)) == 1  # the first send only


def test_a_disabled_account_is_refused_within_one_second_by_a_warm_function(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def listed() -> dict[str, str]:
        return answer(client.post(LIST.format(key=client.api_key)))

    # Given a warm function that read the account once for a burst of requests
    reads: list[str] = []
    lookup = client.ctx.accounts._by_key_hash

    def counted(digest: str) -> Account | None:
        reads.append(digest)
        return lookup(digest)

    monkeypatch.setattr(client.ctx.accounts, "_by_key_hash", counted)
    assert [listed()["status"] for _ in range(5)] == ["Success"] * 5
    assert len(reads) <= 2  # once, or twice if the burst outlasted the copy's 0.5 s

    # When the account is disabled by another process (the admin: its own store)
    def disable(account: Account) -> Account:
        account.enabled = False
        return account

    AccountStore().change(client.account.account_id, disable)
    # Then the warm function refuses it within 1 second
    assert within_one_second(listed, "E105") < 1.0


def test_an_unknown_key_is_not_remembered_past_the_second(client: Client, stack: Stack) -> None:
    key = "k" * 32

    def listed() -> dict[str, str]:
        return answer(client.post(LIST.format(key=key)))

    # Given a warm function that refused a key unknown so far
    assert listed()["error-code"] == "E104"
    # When an account is created with that key elsewhere
    create_account(AccountStore(), "late", api_key=key, service_id="1")
    # Then the key works within 1 second
    assert within_one_second(listed, "Success") < 1.0


def test_the_relay_queues_a_send_once_when_its_record_comes_twice(
    client: Client, stack: Stack
) -> None:
    # Given an accepted send, its outbox record
    got = send(client, saved(client))
    send_id = parse_tracking_id(got["tracking-id"])
    records = outbox_records(stack)
    assert any(r["dynamodb"]["Keys"]["id"]["S"] == queue_id(send_id or 0) for r in records)
    # When the stream hands the same batch to the relay twice
    assert relay_event({"Records": records}) == {"batchItemFailures": []}
    assert relay_event({"Records": records}) == {"batchItemFailures": []}
    # Then the send is on the queue once
    assert queued(stack) == [send_id]


def test_a_send_whose_relay_fails_still_ends(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an accepted send, and a send queue that refuses the relay
    got = send(client, saved(client))
    send_id = parse_tracking_id(got["tracking-id"]) or 0

    def refused(_self: SendQueue, _ids: Any) -> list[int]:
        raise DomainError("could not queue the sends: throttled")

    monkeypatch.setattr(SendQueue, "enqueue_many", refused)
    records = outbox_records(stack)
    # When the relay runs, Then it reports the record for a retry and keeps the item
    failed = relay_event({"Records": records})["batchItemFailures"]
    queue_record = next(r for r in records if "send_id" in r["dynamodb"]["NewImage"])
    assert failed == [{"itemIdentifier": queue_record["dynamodb"]["SequenceNumber"]}]
    assert client.ctx.outbox.pending(queue_id(send_id))
    # And if it never succeeds, the sweeper ends the send past its deadline: E999
    due = int(time.time()) + queued_seconds() + MARGIN_SECONDS + 1
    assert sweep(client.ctx, due) == {"send failed": 1}
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.FAILED
    monkeypatch.undo()
    codes = [e["detail"].get("code") for e in postback_events(stack)]
    assert "E999" in codes
    # And a relay that recovers then queues it once (delivery skips a final send)
    assert queued(stack) == [send_id]
