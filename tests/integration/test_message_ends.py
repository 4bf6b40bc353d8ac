"""Every message reaches an end (issue 8, item 3): a final state and its final postback,
whatever fails on the way. Each test fails on the code before the fix.

`assert_every_message_ended(ctx, stack)` is the invariant, for any test that ran a
scenario: no send or template left under way, each with its final postback told.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.stack import Stack
from mmsapi import deadlines, records
from mmsapi.carrier import mm7
from mmsapi.errors import DomainError
from mmsapi.media.types import MediaKind
from mmsapi.models import (
    DdmRequest,
    Send,
    SendStatus,
    StoredMedia,
    Template,
    TemplateSlide,
    TemplateStatus,
    utcnow,
)
from mmsapi.services import deliver as deliver_module
from mmsapi.services.context import Context
from mmsapi.services.ddm import time_out
from mmsapi.services.report import mm7_report
from mmsapi.services.sweep import settle_send
from mmsapi.store import aws
from mmsapi.store.sends import send_of
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client, load_event
from tests.integration.helpers import drain, postback_events, relay_outbox
from tests.lambda_context import FakeLambdaContext, load_handler_module

ROOT = Path(__file__).resolve().parents[2]
TO = "14044790000"
# Final postbacks of the documents (docs/postbacks.md#codes); N101 is not final: its report follows.
SEND_FINAL_CODES = {"N102", "E101", "E102", "N202", "E202", "E999", "E012", "E013"}
TEMPLATE_FINAL_CODES = {"N003", "E002", "E003", "E004"}
HOUR = 3600

_TOLD: dict[str, dict[str, Any]] = {}


def told(stack: Stack) -> dict[str, dict[str, Any]]:
    """Every postback told so far, by id (postback_events relays the outbox to the postback
    queue and reads it once, so they are remembered here)."""
    for event in postback_events(stack):
        # At least once: a postback published again keeps its id, and is told once here.
        _TOLD[str(event.get("postback_id") or event.get("id"))] = event["detail"]
    return _TOLD


@pytest.fixture(autouse=True)
def _forget_told() -> None:
    _TOLD.clear()


def codes_of(stack: Stack, send_id: int) -> list[str]:
    """The codes told about one send (its tracking-id)."""
    return sorted(
        detail["code"]
        for detail in told(stack).values()
        if parse_tracking_id(str(detail.get("fields", {}).get("tracking-id", ""))) == send_id
    )


def _scan(table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in aws.dynamodb().get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return items


def assert_every_message_ended(ctx: Context, stack: Stack) -> None:
    """No send or template is under way, and each has its final postback."""
    details = list(told(stack).values())
    final_for_mms = {
        d["fields"].get("mms-id") for d in details if d["code"] in TEMPLATE_FINAL_CODES
    }
    final_for_send = {
        parse_tracking_id(str(d["fields"].get("tracking-id", "")))
        for d in details
        if d["code"] in SEND_FINAL_CODES
    }
    for item in _scan(ctx.templates.table):
        template = records.from_json(Template, item["doc"]["S"])
        assert template.status in (TemplateStatus.READY, TemplateStatus.FAILED), template
        assert "settle_by" not in item
        if template.single_send_id is None:
            assert str(template.mms_id) in final_for_mms, template.mms_id
    for item in _scan(ctx.sends.table):
        send = send_of(item)
        assert send.status is SendStatus.FAILED or send.status is SendStatus.DELIVERED, send
        assert "settle_by" not in item
        assert send.send_id in final_for_send, send.send_id


# ---------------------------------------------------------------- records to work on


def encoding_template(ctx: Context, client: Client, mms_id: int, **extra: Any) -> Template:
    template = Template(
        mms_id=mms_id,
        account_id=client.account.account_id,
        name="encoding",
        status=TemplateStatus.ENCODING,
        slides=[
            TemplateSlide(
                media=[
                    StoredMedia(
                        kind=MediaKind.VIDEO,
                        source_url="https://media.example.com/v.mp4",
                        content_type="video/mp4",
                        original_key=f"templates/{client.account.account_id}/{mms_id}/v.mp4",
                        original_bytes=1000,
                    )
                ]
            )
        ],
        **extra,
    )
    ctx.templates.create(template)
    return template


def a_send(
    ctx: Context,
    client: Client,
    send_id: int,
    mms_id: int,
    status: SendStatus,
    created_at: datetime | None = None,
) -> Send:
    send = Send(
        send_id=send_id,
        account_id=client.account.account_id,
        mms_id=mms_id,
        to=TO,
        sender="28444",
        requested_from="28444",
        service_id="12345",
        fallback_sms_text="Your coupon:",
        status=status,
        created_at=created_at or utcnow(),
    )
    ctx.sends.create(send)
    return send


def status_of(ctx: Context, send_id: int) -> SendStatus:
    send = ctx.sends.get(send_id)
    assert send is not None
    return send.status


def sweep_at(seconds: int) -> dict[str, int]:
    event = load_event("sweeper/schedule.json")
    event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    result: dict[str, int] = load_handler_module("sweeper").handler(event, FakeLambdaContext())
    return result


def queue_record(send_id: int, attempt: int = 1) -> dict[str, Any]:
    event = load_event("deliver/unknown-send.json")
    event["Records"][0]["body"] = json.dumps({"send_id": send_id})
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(attempt)
    return event


# ---------------------------------------------------------------- the cases


def test_a_delivery_fault_no_retry_can_mend_ends_the_send_at_once(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queued send whose message cannot be built (a fault, not "retry later")
    template = encoding_template(client.ctx, client, 7001)
    template.status = TemplateStatus.READY
    client.ctx.templates.replace(template, expected=TemplateStatus.ENCODING)
    a_send(client.ctx, client, 8001, 7001, SendStatus.QUEUED)
    monkeypatch.setenv("MMS_MM7_URL", "http://127.0.0.1:9/mm7")
    from mmsapi.settings import get_settings

    get_settings.cache_clear()

    def broken(*_: Any, **__: Any) -> Any:
        raise ValueError("cannot build this message")

    monkeypatch.setattr(deliver_module, "adapt_message", broken)
    # When the first attempt runs
    result = load_handler_module("deliver").handler(queue_record(8001), FakeLambdaContext())
    # Then the message is done with (no retry into the DLQ) and the send ended with E999
    assert result == {"batchItemFailures": []}
    assert status_of(client.ctx, 8001) is SendStatus.FAILED
    assert codes_of(stack, 8001) == ["E999"]


def test_any_fault_on_the_last_attempt_ends_the_send_instead_of_the_dlq(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_send(client.ctx, client, 8002, 7002, SendStatus.QUEUED)

    def aws_down(*_: Any, **__: Any) -> Any:
        raise DomainError("send read failed: throttled")

    module = load_handler_module("deliver")
    monkeypatch.setattr(module, "deliver", aws_down)
    result = module.handler(queue_record(8002, attempt=5), FakeLambdaContext())
    assert result == {"batchItemFailures": []}
    assert status_of(client.ctx, 8002) is SendStatus.FAILED
    assert codes_of(stack, 8002) == ["E999"]


def test_a_send_in_the_dead_letter_queue_ends_with_e999(client: Client, stack: Stack) -> None:
    # Given a queued send whose queue message ran out of attempts
    a_send(client.ctx, client, 8003, 7003, SendStatus.QUEUED)
    event = load_event("sweeper/dead-letter.json")
    event["Records"][0]["body"] = json.dumps({"send_id": 8003})
    # When the dead-letter consumer gets it, Then the send ends with E999
    result = load_handler_module("sweeper").handler(event, FakeLambdaContext())
    assert result == {"batchItemFailures": []}
    assert status_of(client.ctx, 8003) is SendStatus.FAILED
    assert codes_of(stack, 8003) == ["E999"]
    assert_every_message_ended(client.ctx, stack)


def test_a_poison_dead_letter_is_dropped_not_retried_forever(client: Client) -> None:
    event = load_event("sweeper/dead-letter.json")
    event["Records"][0]["body"] = "not json"
    result = load_handler_module("sweeper").handler(event, FakeLambdaContext())
    assert result == {"batchItemFailures": []}


def test_a_failure_after_discovery_hands_the_send_to_the_queue(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a send whose DDM wait is over, and AWS failing under delivery
    send = a_send(client.ctx, client, 8004, 7004, SendStatus.DISCOVERING)
    send.ddm = DdmRequest(text="hi")
    send.ddm_until = int(time.time()) - 1
    client.ctx.sends.save(send)
    monkeypatch.setenv("MMS_MM7_URL", "http://127.0.0.1:9/mm7")
    from mmsapi.settings import get_settings

    get_settings.cache_clear()

    def aws_down(*_: Any, **__: Any) -> Any:
        raise DomainError("template read failed: throttled")

    monkeypatch.setattr(client.ctx.templates, "get", aws_down)
    aws.sqs().purge_queue(QueueUrl=stack.physical["SendQueue"])
    # When its timeout message comes, Then the send is queued, with its queue message
    assert time_out(client.ctx, 8004, send.ddm_until) == "timed out"
    relay_outbox(stack)
    assert [body["send_id"] for body in drain(stack.physical["SendQueue"])] == [8004]
    # And delivery failing gives the claim back: the queue's retries keep it
    with pytest.raises(DomainError):
        deliver_module.deliver(client.ctx, 8004)
    assert status_of(client.ctx, 8004) is SendStatus.QUEUED
    # And the timeout message again (a redelivery) changes nothing
    assert time_out(client.ctx, 8004, send.ddm_until) == "discovery over"


def test_a_discovering_send_whose_timeout_never_came_ends_at_its_deadline(
    client: Client, stack: Stack
) -> None:
    # Given a send waiting for its DDM (5 minutes) whose timeout message was lost
    send = a_send(client.ctx, client, 8005, 7005, SendStatus.DISCOVERING)
    send.ddm = DdmRequest(text="hi")
    client.ctx.sends.save(send)
    due = client.ctx.sends.settle_by(8005)
    assert due is not None
    # Then the sweeper leaves it alone while its timeout may still come
    assert due > time.time() + 5 * 60
    sweep_at(int(time.time()) + 5 * 60 + 1)
    assert status_of(client.ctx, 8005) is SendStatus.DISCOVERING
    # And ends it (E999) past its deadline
    sweep_at(due + 1)
    assert codes_of(stack, 8005) == ["E999"]
    assert_every_message_ended(client.ctx, stack)


def test_every_task_of_every_workflow_is_caught() -> None:
    # A workflow that fails must hand its message on to a state that settles it.
    for path in sorted((ROOT / "statemachine").glob("*.asl.json")):
        definition = json.loads(path.read_text())
        states = definition["States"]
        assert definition.get("TimeoutSeconds")
        for name, state in states.items():
            if state["Type"] in ("Task", "Map"):
                catches = [c for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"]]
                assert catches, f"{path.name}: {name} has no Catch of States.ALL"


def test_a_sendmms_whose_template_is_deleted_while_encoding_ends_with_e013(
    client: Client, stack: Stack
) -> None:
    # Given a sendMMS: its template encoding, its send waiting
    template = encoding_template(client.ctx, client, 7006, single_send_id=8006)
    a_send(client.ctx, client, 8006, 7006, SendStatus.WAITING)
    from mmsapi.services.encode import encoding_input

    given = encoding_input(template, client.account)
    # When the template is deleted, then its encoding finishes
    client.ctx.templates.delete(7006)
    result = load_handler_module("finalize").handler({**given, "results": []}, FakeLambdaContext())
    # Then the send ends with E013 (video) instead of waiting forever
    assert result["status"] == "gone"
    assert status_of(client.ctx, 8006) is SendStatus.FAILED
    assert codes_of(stack, 8006) == ["E013"]
    assert_every_message_ended(client.ctx, stack)


def test_the_sweeper_ends_a_send_whose_template_vanished(client: Client, stack: Stack) -> None:
    a_send(client.ctx, client, 8007, 7007, SendStatus.WAITING)  # its template: gone
    assert sweep_at(int(time.time()) + 2 * HOUR) == {"send failed": 1}
    assert codes_of(stack, 8007) == ["E013"]
    assert_every_message_ended(client.ctx, stack)


def test_a_finalize_whose_write_would_be_refused_fails_the_template(
    client: Client, stack: Stack
) -> None:
    # Given an encoding template, and results too large for its DynamoDB item
    encoding_template(client.ctx, client, 7008)
    item = {"slide": 1, "kind": "video", "source_url": "https://media.example.com/v.mp4"}
    rendition = {
        "key": "templates/x/" + "k" * 900,
        "content_type": "video/mp4",
        "profile": "mp4",
        "codec": "h264",
        "bytes": 1,
    }
    results = [{"ok": True, "item": item, "duration_seconds": 5.0, "renditions": [rendition] * 600}]
    event = {"mms_id": 7008, "account_id": client.account.account_id, "results": results}
    # When finalize runs
    result = load_handler_module("finalize").handler(event, FakeLambdaContext())
    # Then the template is failed (not encoding, not E626 forever) and E003 is told
    assert result["status"] == "failed"
    stored = client.ctx.templates.get(7008)
    assert stored is not None
    assert stored.status is TemplateStatus.FAILED
    assert [d["code"] for d in told(stack).values()] == ["E003"]
    assert_every_message_ended(client.ctx, stack)


def test_the_workflow_catch_fails_the_template(client: Client, stack: Stack) -> None:
    encoding_template(client.ctx, client, 7009)
    event = {
        "mms_id": 7009,
        "account_id": client.account.account_id,
        "items": [],
        "error": {"Error": "States.Runtime", "Cause": "boom"},
    }
    result = load_handler_module("finalize").handler(event, FakeLambdaContext())
    assert result["status"] == "failed"
    assert [d["code"] for d in told(stack).values()] == ["E003"]


def test_a_worker_killed_mid_step_is_settled_by_the_sweeper(client: Client, stack: Stack) -> None:
    # Given a send claimed by a worker that died, and a template whose workflow died
    send = a_send(client.ctx, client, 8010, 7010, SendStatus.QUEUED)
    send.status = SendStatus.SUBMITTING
    assert client.ctx.sends.save(send, expected=SendStatus.QUEUED)
    encoding_template(client.ctx, client, 7011)
    # When the sweeper runs before their deadlines, Then it leaves them alone
    assert sweep_at(int(time.time()) + 60) == {}
    # When it runs past them, Then the send ends with E999 and the template with E003
    assert sweep_at(int(time.time()) + 2 * HOUR) == {"send failed": 1, "template failed": 1}
    assert codes_of(stack, 8010) == ["E999"]
    assert "E003" in [d["code"] for d in told(stack).values()]
    assert_every_message_ended(client.ctx, stack)
    # And a second run finds nothing
    assert sweep_at(int(time.time()) + 2 * HOUR) == {}


def test_the_sweeper_never_overrides_a_state_reached_meanwhile(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an overdue queued send that a worker delivers while the sweeper looks at it
    send = a_send(client.ctx, client, 8012, 7012, SendStatus.QUEUED)
    stale, stale_due = copy.deepcopy(send), client.ctx.sends.settle_by(8012)
    send.status, send.sent_as = SendStatus.DELIVERED, "MMS"
    assert client.ctx.sends.save(send, expected=SendStatus.QUEUED)
    # (a context of its own: undoing the test's monkeypatch would undo the fixtures' too)
    with monkeypatch.context() as reading_stale:
        reading_stale.setattr(client.ctx.sends, "get", lambda _id: copy.deepcopy(stale))
        reading_stale.setattr(client.ctx.sends, "settle_by", lambda _id: stale_due)
        # When the sweeper settles it from what it read, Then its write is refused
        assert settle_send(client.ctx, 8012, int(time.time()) + 2 * HOUR) == "changed"
    assert status_of(client.ctx, 8012) is SendStatus.DELIVERED
    assert codes_of(stack, 8012) == []


def test_a_queued_send_given_a_new_deadline_is_not_settled_on_the_old_one(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    send = a_send(client.ctx, client, 8013, 7013, SendStatus.QUEUED)
    old_due = client.ctx.sends.settle_by(8013)
    assert old_due is not None
    with monkeypatch.context() as reading_stale:
        reading_stale.setattr(client.ctx.sends, "settle_by", lambda _id: old_due - 1)
        assert settle_send(client.ctx, 8013, old_due + 1) == "changed"
    assert status_of(client.ctx, 8013) is send.status


def sent_send(ctx: Context, client: Client, send_id: int, sent_as: str = "MMS") -> Send:
    """A send the carrier (or the SMS gateway) accepted, as delivery saves it."""
    send = a_send(ctx, client, send_id, 7100, SendStatus.QUEUED)
    send.status, send.sent_as, send.carrier_message_id = SendStatus.SENT, sent_as, f"mid-{send_id}"
    assert ctx.sends.save(send, expected=SendStatus.QUEUED, carrier_message=True)
    return send


def late_report(ctx: Context, send: Send) -> None:
    body, content_type = mm7.build_delivery_report_req(
        transaction_id="late-1",
        message_id=send.carrier_message_id,
        recipient=send.to,
        sender=send.sender,
        mm_status=mm7.MMStatus.RETRIEVED,
        date=utcnow(),
    )
    mm7_report(ctx, body, content_type)


def test_a_sent_send_whose_report_never_comes_expires_with_e102(
    client: Client, stack: Stack
) -> None:
    from mmsapi.settings import get_settings

    # Given an MMS the carrier accepted, whose delivery report never comes
    sent_send(client.ctx, client, 8020)
    wait = get_settings().report_wait_days * 24 * HOUR
    # When the sweeper runs before the report wait is over, Then the send is left alone
    # (its first look is past: indexed at its deadline from then on)
    assert sweep_at(int(time.time()) + wait - HOUR) == {"send looked at later": 1}
    assert sweep_at(int(time.time()) + wait - HOUR) == {}
    assert status_of(client.ctx, 8020) is SendStatus.SENT
    assert codes_of(stack, 8020) == []
    # When it runs after, Then the send ends with E102 "Message Sent/Expired"
    assert sweep_at(int(time.time()) + wait + HOUR) == {"send failed": 1}
    assert status_of(client.ctx, 8020) is SendStatus.FAILED
    [final] = [d for d in told(stack).values() if d["code"] == "E102"]
    assert final["fields"]["status"] == "Message Sent/Expired"
    assert "no delivery report" in final["fields"]["status-details"]
    assert_every_message_ended(client.ctx, stack)


def test_a_fallback_sms_whose_report_never_comes_expires_with_e202(
    client: Client, stack: Stack
) -> None:
    sent_send(client.ctx, client, 8021, sent_as="SMS")
    assert sweep_at(int(time.time()) + 4 * 24 * HOUR) == {"send failed": 1}
    assert codes_of(stack, 8021) == ["E202"]


def test_a_report_later_than_the_sweep_is_ignored(client: Client, stack: Stack) -> None:
    # Given a sent send that the sweeper ended as expired
    send = sent_send(client.ctx, client, 8022)
    assert sweep_at(int(time.time()) + 4 * 24 * HOUR) == {"send failed": 1}
    assert codes_of(stack, 8022) == ["E102"]
    # When its delivery report arrives after all
    late_report(client.ctx, send)
    # Then it changes nothing: no second final postback
    assert status_of(client.ctx, 8022) is SendStatus.FAILED
    assert codes_of(stack, 8022) == ["E102"]


def test_a_report_arriving_while_the_sweeper_looks_wins(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an overdue sent send whose report arrives while the sweeper reads it
    send = sent_send(client.ctx, client, 8023)
    stale, stale_due = copy.deepcopy(send), client.ctx.sends.settle_by(8023)
    assert stale_due is not None
    late_report(client.ctx, send)
    with monkeypatch.context() as reading_stale:
        reading_stale.setattr(client.ctx.sends, "get", lambda _id: copy.deepcopy(stale))
        reading_stale.setattr(client.ctx.sends, "settle_by", lambda _id: stale_due)
        # When the sweeper settles it from what it read, Then its write is refused
        assert settle_send(client.ctx, 8023, stale_due + 1) == "changed"
    # And the report's N102 is the one final postback
    assert status_of(client.ctx, 8023) is SendStatus.DELIVERED
    assert codes_of(stack, 8023) == ["N102"]


def test_the_dead_letter_consumer_leaves_a_sent_send_to_its_report(
    client: Client, stack: Stack
) -> None:
    # A duplicate queue message of a send already sent, dead-lettered: not an E999
    sent_send(client.ctx, client, 8024)
    assert settle_send(client.ctx, 8024, int(time.time()), given_up_by="queue") == "not its own"
    assert status_of(client.ctx, 8024) is SendStatus.SENT
    assert codes_of(stack, 8024) == []


def _indexed(ctx: Context, send_id: int) -> tuple[int, int]:
    """A stored send's index key and deadline (settle_by, due)."""
    item = aws.dynamodb().get_item(
        TableName=ctx.sends.table, Key={"send_id": {"N": str(send_id)}}, ConsistentRead=True
    )["Item"]
    return int(item["settle_by"]["N"]), int(item["due"]["N"])


def test_a_young_send_keeps_its_index_key_and_is_looked_at_again_when_due(
    client: Client, stack: Stack
) -> None:
    # Given a send accepted now: indexed at its first look, before its deadline
    send = a_send(client.ctx, client, 8030, 7030, SendStatus.QUEUED)
    key, due = _indexed(client.ctx, 8030)
    assert key == int(send.created_at.timestamp()) + deadlines.first_look_seconds() < due
    # When it is claimed and sent (each step a new deadline)
    send.status = SendStatus.SUBMITTING
    assert client.ctx.sends.save(send, expected=SendStatus.QUEUED)
    send.status, send.sent_as, send.carrier_message_id = SendStatus.SENT, "MMS", "mid-8030"
    assert client.ctx.sends.save(send, expected=SendStatus.SUBMITTING, carrier_message=True)
    # Then its index key stays (no index write) while its deadline moves on
    sent_key, sent_due = _indexed(client.ctx, 8030)
    assert sent_key == key
    assert sent_due >= time.time() + deadlines.report_wait_seconds() - 5
    # And the sweeper at its first look leaves it under way, indexed at its deadline now
    assert sweep_at(key + 1) == {"send looked at later": 1}
    assert status_of(client.ctx, 8030) is SendStatus.SENT
    assert _indexed(client.ctx, 8030) == (sent_due, sent_due)
    assert sweep_at(key + 1) == {}
    # And it ends at that deadline, not later (E102: no report came)
    assert sweep_at(sent_due) == {"send failed": 1}
    assert codes_of(stack, 8030) == ["E102"]
    assert_every_message_ended(client.ctx, stack)


def test_a_send_older_than_its_first_look_is_indexed_at_its_deadline(
    client: Client, stack: Stack
) -> None:
    # Given a send accepted long ago (its first look is past)
    long_ago = utcnow() - timedelta(seconds=2 * deadlines.first_look_seconds())
    send = a_send(client.ctx, client, 8031, 7031, SendStatus.QUEUED, created_at=long_ago)
    # Then each write indexes it at its own deadline (the key moves with it)
    key, due = _indexed(client.ctx, 8031)
    assert key == due
    send.status = SendStatus.SUBMITTING
    assert client.ctx.sends.save(send, expected=SendStatus.QUEUED)
    claimed_key, claimed_due = _indexed(client.ctx, 8031)
    assert claimed_key == claimed_due < due
    # And the sweeper ends it at that deadline (E999)
    assert sweep_at(claimed_due - 1) == {}
    assert sweep_at(claimed_due) == {"send failed": 1}
    assert codes_of(stack, 8031) == ["E999"]


def test_a_sweeper_looking_at_a_send_that_moved_on_leaves_its_key_to_the_writer(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a young send the sweeper read before a worker claimed it
    send = a_send(client.ctx, client, 8032, 7032, SendStatus.QUEUED)
    key, stale_due = _indexed(client.ctx, 8032)
    stale = copy.deepcopy(send)
    send.status = SendStatus.SUBMITTING
    assert client.ctx.sends.save(send, expected=SendStatus.QUEUED)
    with monkeypatch.context() as reading_stale:
        reading_stale.setattr(client.ctx.sends, "get", lambda _id: copy.deepcopy(stale))
        reading_stale.setattr(client.ctx.sends, "settle_by", lambda _id: stale_due)
        # When it would move the key to the deadline it read, Then it is refused
        assert settle_send(client.ctx, 8032, key + 1) == "not due"
    assert status_of(client.ctx, 8032) is SendStatus.SUBMITTING
    assert _indexed(client.ctx, 8032)[0] == key
