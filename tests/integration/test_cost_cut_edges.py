"""Edges of the cost cuts of issue 11 (the sweeper's first looks, sends queued by their
marked write, summed metrics), found by an independent review: each test failed on the
code before its fix."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest

from local.stack import Stack
from mmsapi import deadlines
from mmsapi.admin import cli as admin
from mmsapi.admin import target
from mmsapi.batch import SqsRecord
from mmsapi.models import SendStatus, utcnow
from mmsapi.observability import flush_tallies
from mmsapi.services.sweep import sweep
from mmsapi.settings import get_settings
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.helpers import relay_event
from tests.integration.test_lean_sends import queued, saved, send
from tests.integration.test_message_ends import a_send, status_of
from tests.lambda_context import load_handler_module


def test_redrive_outbox_queues_an_accepted_send_the_sweeper_has_looked_at(
    client: Client,
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an accepted send whose sends-stream record the relay never hands over (the
    # OutboxFunction is broken: its records run out of retries after 6 hours, OutboxDLQ)
    send_id = parse_tracking_id(send(client, saved(client))["tracking-id"]) or 0
    assert status_of(client.ctx, send_id) is SendStatus.QUEUED
    # And the sweeper (every 5 minutes) reaches its first look (~13 minutes) meanwhile
    created = client.ctx.sends.get(send_id)
    assert created is not None
    first_look = int(created.created_at.timestamp()) + deadlines.first_look_seconds()
    assert sweep(client.ctx, first_look + 1) == {"send looked at later": 1}
    assert status_of(client.ctx, send_id) is SendStatus.QUEUED  # still never queued
    # When, the cause fixed, the operator runs mmsapi-admin redrive-outbox (OutboxDLQAlarm)
    monkeypatch.setattr(target, "connect", lambda *_: target.Target("test", get_settings()))
    admin.main(["redrive-outbox"])
    # Then the send is put on the send queue (else it can only end E999 at its deadline),
    # although look_later removed its `enqueue` mark long before
    assert send_id in queued(stack)


def test_first_looks_do_not_crowd_out_a_send_past_its_deadline(
    client: Client, stack: Stack
) -> None:
    # Given sends of shard 0 at their first look, not due (SENT, waiting for reports)
    now = int(time.time())
    for send_id in (8200, 8208, 8216):
        young = a_send(client.ctx, client, send_id, 7200, SendStatus.QUEUED)
        young.status, young.sent_as = SendStatus.SENT, "MMS"
        young.carrier_message_id = f"mid-{send_id}"
        assert client.ctx.sends.save(young, expected=SendStatus.QUEUED, carrier_message=True)
    # And a send of shard 1 accepted long ago, past its deadline (its worker died)
    old = utcnow() - timedelta(seconds=2 * deadlines.first_look_seconds())
    overdue = a_send(client.ctx, client, 8201, 7201, SendStatus.QUEUED, created_at=old)
    overdue.status = SendStatus.SUBMITTING
    assert client.ctx.sends.save(overdue, expected=SendStatus.QUEUED)
    due = client.ctx.sends.settle_by(8201) or 0
    # When the sweeper runs past both (here with a limit of 3 a run; 200 on AWS: a stack
    # with more than 200 sends reaching their first look per 5-minute run)
    at = max(due, now + deadlines.first_look_seconds()) + 1
    outcomes = sweep(client.ctx, at, limit=3)
    # Then the send past its deadline is ended in this run: first looks do not take the
    # places of the run
    assert outcomes.get("send failed") == 1, outcomes
    assert status_of(client.ctx, 8201) is SendStatus.FAILED


def test_an_events_count_is_printed_before_its_delivery_can_kill_the_invocation(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Postbacks{code} (the E999 alarm's metric) is counted on the first attempt only: it
    must be printed before the delivery, since an invocation Lambda ends on its timeout
    (or out of memory) runs no `finally`, and the retry (attempt 2) does not count the
    event again."""
    app = load_handler_module("postback")
    printed: list[str] = []

    def delivery_that_hangs(*_args: object, **_kwargs: object) -> None:
        printed.append(capsys.readouterr().out)  # what CloudWatch has when Lambda kills it
        raise TimeoutError("Task timed out after 30.00 seconds")

    monkeypatch.setattr(app, "handle_event", delivery_that_hangs)
    event = {"id": "ev-1", "detail": {"code": "E999", "account_id": "demo", "fields": {}}}
    record = SqsRecord(
        {
            "messageId": "m-1",
            "receiptHandle": "r-1",
            "body": json.dumps(event),
            "attributes": {"ApproximateReceiveCount": "1"},
        }
    )
    try:
        with pytest.raises(TimeoutError):
            app.record_handler(record)
    finally:
        flush_tallies()  # (what a killed invocation never does; keeps other tests clean)
    assert '"Postbacks"' in printed[0], "E999 not counted before the delivery attempt"


def test_a_marked_send_whose_document_cannot_be_read_does_not_stop_the_relay(
    client: Client, stack: Stack
) -> None:
    """The document only gives the relay's log line its ids: one that cannot be read must
    not fail the invocation (every record behind it on the shard would wait, bisected
    and retried for 6 hours, then OutboxDLQ)."""
    record = {
        "eventID": "1",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"send_id": {"N": "4343"}},
            "NewImage": {
                "send_id": {"N": "4343"},
                "account_id": {"S": "demo"},
                "status": {"S": "queued"},
                "docz": {"B": base64.b64encode(b"not a zlib stream").decode()},
                "enqueue": {"S": "accepted"},
            },
            "SequenceNumber": "100",
            "StreamViewType": "NEW_IMAGE",
        },
    }
    assert relay_event({"Records": [record]}) == {"batchItemFailures": []}
    assert 4343 in queued(stack)
