"""A warm sendSavedMMS makes one AWS call, and gives up none of its promises for it.

The account and the ready template come from copies under 0.5 s old, and the send is one
TransactWriteItems: the send, marked to be queued, and the recipient's opt-out check;
the outbox relay reads the mark from the sends stream and puts the send on the send
queue (services/send.py, services/outbox.py). A template deleted within
a copy's half second is never sent: delivery reads it again (services/deliver.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from local.aws_gate import acting_as
from local.stack import Stack
from local.stream_filters import passes
from local.streams import StreamReader, stream_sources
from mmsapi.admin import cli as admin
from mmsapi.admin import target
from mmsapi.deadlines import MARGIN_SECONDS, queued_seconds
from mmsapi.errors import DomainError
from mmsapi.models import Account, Send, SendStatus, Template, TemplateStatus
from mmsapi.services.accounts import create_account
from mmsapi.services.context import Context
from mmsapi.services.deliver import deliver
from mmsapi.services.sweep import sweep
from mmsapi.settings import get_settings
from mmsapi.store.accounts import AccountStore
from mmsapi.store.outbox import queue_id
from mmsapi.store.sends import ENQUEUE_ACCEPTED, SendQueue
from mmsapi.store.templates import CACHE_SECONDS, ReadyTemplates
from mmsapi.tracking import parse_tracking_id, tracking_id
from tests.conftest import Client
from tests.integration.conftest import Carrier
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


def send_records(stack: Stack) -> list[dict[str, Any]]:
    """The sends stream's records as Lambda hands them to the relay: those its filter
    passes (the writes that queue a send), not marked done."""
    [source] = [
        s
        for s in stream_sources(stack)
        if s.function == RELAY and s.table == stack.physical["SendsTable"]
    ]
    reader = StreamReader(source, stack.region)
    records = [record for _, record in reader.read(lambda: acting_as(RELAY))]
    return [record for record in records if passes(record, source.patterns)]


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


def test_a_warm_send_is_one_call_and_reaches_the_queue_through_the_sends_stream(
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
    # and nothing is written for it but the send (no outbox item to write and delete)
    assert not client.ctx.outbox.pending(queue_id(send_id, ENQUEUE_ACCEPTED))
    assert not client.ctx.outbox.pending(queue_id(send_id))
    assert list(client.ctx.outbox.scan()) == []


class StoppedClock:
    """A clock for a function's template copies that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def ended_with(stack: Stack, send_id: int) -> list[tuple[str, str]]:
    """The codes and status-details of the send's postbacks so far."""
    return [
        (e["detail"]["code"], e["detail"]["fields"].get("status-details", ""))
        for e in postback_events(stack)
        if e["detail"]["fields"].get("tracking-id") == tracking_id(send_id)
    ]


def test_a_deleted_template_is_never_sent_even_when_cached(
    client: Client, stack: Stack, carrier: Carrier
) -> None:
    # Given a warm function that holds the ready template (its copy's clock stopped)
    clock = StoppedClock()
    client.ctx.templates.cache.clock = clock
    mms_id = saved(client)
    assert send(client, mms_id)["status"] == "Success"
    assert client.ctx.templates.cache.get(int(mms_id)) is not None
    relay_outbox(stack)
    assert len(queued(stack)) == 1  # the first send
    # When another warm function deletes it
    other = Client(Context(), client.api_key, client.account, client.source_ip)
    assert answer(other.post(DELETE.format(key=client.api_key, mms_id=mms_id)))["status"] == (
        "Success"
    )
    # Then within its copy's half second the warm function still accepts a send
    got = send(client, mms_id)
    assert got["status"] == "Success", got
    send_id = parse_tracking_id(got["tracking-id"]) or 0
    relay_outbox(stack)
    assert queued(stack) == [send_id]
    # And that send never reaches the MMSC: delivery ends it with its final E101
    assert deliver(client.ctx, send_id) == "failed"
    assert carrier.mmsc.received() == []
    assert ended_with(stack, send_id) == [("E101", "the MMS was deleted before it could be sent")]
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.FAILED
    assert deliver(client.ctx, send_id) == "not queued"  # a redelivery changes nothing
    # And once the copy is CACHE_SECONDS old, the warm function refuses at once: E241
    clock.now += CACHE_SECONDS
    got = send(client, mms_id)
    assert got["error-code"] == "E241", got
    assert client.ctx.templates.cache.get(int(mms_id)) is None
    relay_outbox(stack)
    assert queued(stack) == []


def test_a_send_racing_a_deletion_is_accepted_but_never_sent(
    client: Client, stack: Stack, carrier: Carrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a send whose checks passed on the template as read
    mms_id = saved(client)
    create = client.ctx.sends.create

    def deleted_meanwhile(new: Send, *, queue: bool = False) -> None:
        # When the template is deleted between the checks and the send's write
        other = Client(Context(), client.api_key, client.account, client.source_ip)
        deleted = answer(other.post(DELETE.format(key=client.api_key, mms_id=mms_id)))
        assert deleted["status"] == "Success", deleted
        create(new, queue=queue)

    monkeypatch.setattr(client.ctx.sends, "create", deleted_meanwhile)
    got = send(client, mms_id)
    monkeypatch.setattr(client.ctx.sends, "create", create)  # (undo() would drop the env too)
    # Then the send is accepted (its write came after the deletion's), but its delivery
    # reads the template again: never submitted, ended with the final E101
    assert got["status"] == "Success", got
    send_id = parse_tracking_id(got["tracking-id"]) or 0
    relay_outbox(stack)
    assert queued(stack) == [send_id]
    assert deliver(client.ctx, send_id) == "failed"
    assert carrier.mmsc.received() == []
    assert [code for code, _ in ended_with(stack, send_id)] == ["E101"]
    # And any function without a copy refuses the template at once: E241
    fresh = Client(Context(), client.api_key, client.account, client.source_ip)
    assert send(fresh, mms_id)["error-code"] == "E241"


def test_a_template_copy_is_kept_at_most_its_half_second() -> None:
    clock = StoppedClock()
    cache = ReadyTemplates(clock=clock)
    template = Template(mms_id=7, account_id="a", name="n", status=TemplateStatus.READY, slides=[])
    cache.put(template, 10)
    clock.now += CACHE_SECONDS - 0.01
    assert cache.get(7) is template
    clock.now += 0.01
    assert cache.get(7) is None
    assert (len(cache), cache.bytes) == (0, 0)  # dropped, not only hidden
    # A copy is as old as its read: one read before now expires from then
    cache.put(template, 10, read_at=clock.now - CACHE_SECONDS)
    assert cache.get(7) is None


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


def test_a_send_whose_record_comes_twice_is_delivered_once(
    client: Client, stack: Stack, carrier: Carrier
) -> None:
    # Given an accepted send: its write is the one record the relay gets from the sends
    got = send(client, saved(client))
    send_id = parse_tracking_id(got["tracking-id"])
    records = send_records(stack)
    assert [int(r["dynamodb"]["Keys"]["send_id"]["N"]) for r in records] == [send_id]
    # When the stream hands the same batch to the relay twice (a retried batch)
    assert relay_event({"Records": records}) == {"batchItemFailures": []}
    assert relay_event({"Records": records}) == {"batchItemFailures": []}
    # Then each queue message is delivered, and the carrier gets the MMS once
    messages = drain(stack.physical["SendQueue"])
    assert [int(m["send_id"]) for m in messages] == [send_id, send_id]
    assert [deliver(client.ctx, int(m["send_id"])) for m in messages][1:] == ["not queued"]
    assert len(carrier.mmsc.received()) == 1
    stored = client.ctx.sends.get(send_id or 0)
    assert stored is not None
    assert stored.status is SendStatus.SENT


def test_a_send_whose_relay_fails_still_ends(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an accepted send, and a send queue that refuses the relay
    got = send(client, saved(client))
    send_id = parse_tracking_id(got["tracking-id"]) or 0

    def refused(_self: SendQueue, _ids: Any) -> list[int]:
        raise DomainError("could not queue the sends: throttled")

    recovered = SendQueue.enqueue_many
    monkeypatch.setattr(SendQueue, "enqueue_many", refused)
    [record] = send_records(stack)
    # When the relay runs, Then it reports the record for a retry
    failed = relay_event({"Records": [record]})["batchItemFailures"]
    assert failed == [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]
    # And if it never succeeds, the sweeper ends the send past its deadline: E999
    due = int(time.time()) + queued_seconds() + MARGIN_SECONDS + 1
    assert sweep(client.ctx, due) == {"send failed": 1}
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.FAILED
    monkeypatch.setattr(SendQueue, "enqueue_many", recovered)  # (not undo(): the env too)
    codes = [e["detail"].get("code") for e in postback_events(stack)]
    assert "E999" in codes
    # And a relay that recovers then queues it once (delivery skips a final send)
    assert queued(stack) == [send_id]


def test_sends_the_relay_gave_up_on_are_queued_by_redrive_outbox(
    client: Client,
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given two accepted sends whose stream records the relay never handed over (their
    # retries ran out: OutboxDLQ), and a third already claimed by a worker
    mms_id = saved(client)
    ids = [parse_tracking_id(send(client, mms_id)["tracking-id"]) or 0 for _ in range(3)]
    claimed = client.ctx.sends.get(ids[2])
    assert claimed is not None
    claimed.status = SendStatus.SUBMITTING
    assert client.ctx.sends.save(claimed, expected=SendStatus.QUEUED)
    assert queued(stack) == []
    # When the operator runs mmsapi-admin redrive-outbox
    monkeypatch.setattr(target, "connect", lambda *_: target.Target("test", get_settings()))
    capsys.readouterr()
    admin.main(["redrive-outbox"])
    # Then the two still queued are on the send queue, the claimed one is not, and the
    # template's N003 (never relayed either) is published
    assert sorted(queued(stack)) == sorted(ids[:2])
    assert capsys.readouterr().out.startswith("3 postbacks published and sends queued")
    assert [e["detail"]["code"] for e in drain(stack.physical["PostbackQueue"])] == ["N003"]
