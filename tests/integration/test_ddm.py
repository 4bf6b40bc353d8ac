"""Device Discovery Message: the DDM sent from the send queue, its delivery report (or its
timeout, a delayed message on the same queue) moving the send on, then the MMS adapted
to the learnt handset. Exactly one MMS, whatever the order they come in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from local.mmsc import Rule, SimulatedMmsc
from local.stack import Stack
from mmsapi.carrier import mm7
from mmsapi.models import Send, SendStatus
from mmsapi.services import context as context_module
from mmsapi.services import ddm as ddm_module
from mmsapi.services.ddm import learnt, move_on, time_out
from mmsapi.services.deliver import deliver
from mmsapi.services.report import mm7_report
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.send_queue import MAX_DELAY_SECONDS
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.helpers import answer, drain, postback_events, relay_outbox

# Delivery reports are matched while AWS's indexes may still lag behind the send's write.
pytestmark = pytest.mark.gsi_lag(3600)

NEW_NUMBER = "14044790001"
ANDROID = "http://www-ccpp.tcl-ta.com/files/ALCATEL-ONE_TOUCH_OT-991.xml"
SAMSUNG = "http://wap.samsungmobile.com/uaprof/SM-G991B.xml"


@pytest.fixture
def mmsc(
    request: pytest.FixtureRequest,
    client: Client,
    stack: Stack,
    httpserver: HTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SimulatedMmsc]:
    """Given the simulated MMSC (its outcome "retrieved" unless the test's parameter says
    otherwise), its reports handled as the report route would."""

    def report(request: Request) -> Response:
        return Response(
            mm7_report(context_module.context(), request.get_data(), request.content_type or ""),
            content_type="text/xml",
        )

    httpserver.expect_request("/report").respond_with_handler(report)
    server = SimulatedMmsc(
        tmp_path,
        httpserver.url_for("/report"),
        [Rule(match=".*", outcome=getattr(request, "param", "retrieved"), ua_prof=SAMSUNG)],
        report_delay=0.05,
    )
    monkeypatch.setenv("MMS_MM7_URL", server.start())
    get_settings.cache_clear()
    context_module.reset()
    client.ctx = context_module.context()
    yield server
    server.stop()


def send_with_ddm(client: Client, force: str = "false", timeout: int = 10) -> int:
    saved = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>d</name>"
            "<message-subject>Offer</message-subject>"
            "<slide><message-text>Real content</message-text></slide></request>"
        )
    )
    got = answer(
        client.post(
            f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
            f"<mms-id>{saved['mms-id']}</mms-id><to>{NEW_NUMBER}</to><from>28444</from>"
            "<service-id>12345</service-id><fallback-sms-text>see</fallback-sms-text>"
            "<ddm-message-subject>We are detecting your handset</ddm-message-subject>"
            "<ddm-message-text>This message is free of charge</ddm-message-text>"
            f"<ddm-message-timeout>{timeout}</ddm-message-timeout><ddm-force>{force}</ddm-force></request>"
        )
    )
    assert got["status"] == "Success", got
    return parse_tracking_id(got["tracking-id"]) or 0


def wait_for_status(client: Client, send_id: int, status: SendStatus, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        send = client.ctx.sends.get(send_id)
        if send is not None and send.status is status:
            return
        time.sleep(0.1)
    raise AssertionError(f"send {send_id} is {send.status if send else None}, not {status}")


def run_send_queue(client: Client, stack: Stack) -> list[str]:
    """The deliver function's work on what the outbox and the send queue hold now (the
    delayed timeout messages stay on the queue until they are due)."""
    relay_outbox(stack)
    outcomes = []
    for body in drain(stack.physical["SendQueue"]):
        if "ddm_until" in body:
            outcomes.append(time_out(client.ctx, body["send_id"], body["ddm_until"]))
        else:
            outcomes.append(deliver(client.ctx, body["send_id"]))
    return outcomes


def stored(client: Client, send_id: int) -> Send:
    send = client.ctx.sends.get(send_id)
    assert send is not None
    return send


def send_codes(stack: Stack) -> list[str]:
    """The codes of the send's postbacks (the template's N003 left out)."""
    events = postback_events(stack)
    return [e["detail"]["code"] for e in events if e["postback_id"].startswith("send-")]


def delayed_messages(stack: Stack) -> int:
    attributes = aws.sqs().get_queue_attributes(
        QueueUrl=stack.physical["SendQueue"],
        AttributeNames=["ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def at_deadline(monkeypatch: pytest.MonkeyPatch, send: Send) -> None:
    """The DDM's wait has run out (its timeout message is due)."""

    class Clock:
        @staticmethod
        def time() -> float:
            return send.ddm_until + 1.0

    monkeypatch.setattr(ddm_module, "time", Clock)


def test_ddm_first_then_the_mms_for_the_learnt_handset(
    client: Client, stack: Stack, mmsc: SimulatedMmsc
) -> None:
    # Given a send with DDM fields to a number whose handset is unknown
    send_id = send_with_ddm(client)
    postback_events(stack)
    # When the send queue delivers it
    assert run_send_queue(client, stack) == ["discovering the handset"]
    # Then the DDM goes first, its report teaches the handset and queues the send again
    wait_for_status(client, send_id, SendStatus.QUEUED)
    assert stored(client, send_id).discovered
    assert run_send_queue(client, stack) == ["sent as MMS"]
    # And the MMS follows, for the learnt handset
    wait_for_status(client, send_id, SendStatus.DELIVERED)
    received = mmsc.received()
    assert [r.subject for r in received] == ["We are detecting your handset", "Offer"]
    assert received[0].parts[0].data == b"This message is free of charge"
    cached = client.ctx.handsets.get(NEW_NUMBER)
    assert cached is not None
    assert cached.profile_id == "android"
    assert stored(client, send_id).rendition.startswith("android:")
    events = [e["detail"] for e in postback_events(stack)]
    assert [e["code"] for e in events] == ["N501", "N502", "N101", "N102"]
    assert events[1]["fields"]["handset"] == "Android phone"
    # And its timeout message, when it comes, finds the discovery over
    assert delayed_messages(stack) == 1
    assert time_out(client.ctx, send_id, int(time.time()) + 600) == "discovery over"


def test_known_handset_skips_the_ddm_unless_forced(
    client: Client, stack: Stack, mmsc: SimulatedMmsc
) -> None:
    client.ctx.handsets.put(NEW_NUMBER, "iphone", None, "test")
    assert deliver(client.ctx, send_with_ddm(client)) == "sent as MMS"
    assert deliver(client.ctx, send_with_ddm(client, force="true")) == "discovering the handset"


@pytest.mark.parametrize("mmsc", ["silent"], indirect=True)
def test_timeout_sends_the_mms_with_generic_settings(
    client: Client, stack: Stack, mmsc: SimulatedMmsc, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a send whose DDM never reports
    send_id = send_with_ddm(client)
    assert run_send_queue(client, stack) == ["discovering the handset"]
    send = stored(client, send_id)
    # When its timeout message comes before the deadline, Then the send waits on
    assert time_out(client.ctx, send_id, send.ddm_until) == "waiting on"
    assert stored(client, send_id).status is SendStatus.DISCOVERING
    # And when it comes at the deadline, the MMS goes with generic settings
    at_deadline(monkeypatch, send)
    assert time_out(client.ctx, send_id, send.ddm_until) == "timed out"
    assert run_send_queue(client, stack) == ["sent as MMS"]
    assert [r.subject for r in mmsc.received()] == ["We are detecting your handset", "Offer"]
    assert stored(client, send_id).rendition.startswith("generic:")
    assert send_codes(stack) == ["N501", "N101"]
    # And the timeout message again (a redelivery) sends nothing more
    assert time_out(client.ctx, send_id, send.ddm_until) == "discovery over"
    assert run_send_queue(client, stack) == []
    assert len(mmsc.received()) == 2


@pytest.mark.parametrize("mmsc", ["silent"], indirect=True)
def test_a_timeout_longer_than_sqs_delays_is_requeued_until_it_is_due(
    client: Client, stack: Stack, mmsc: SimulatedMmsc, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the queue's messages as they are sent
    sent: list[dict[str, Any]] = []
    sqs = aws.sqs()
    real_send = sqs.send_message

    def send_message(**kwargs: Any) -> Any:
        sent.append(kwargs)
        return real_send(**kwargs)

    monkeypatch.setattr(sqs, "send_message", send_message)
    # When a send with a 40-minute DDM timeout is delivered
    send_id = send_with_ddm(client, timeout=40)
    assert run_send_queue(client, stack) == ["discovering the handset"]
    send = stored(client, send_id)
    # Then its timeout message waits SQS's longest delay, naming its deadline
    assert [m["DelaySeconds"] for m in sent] == [MAX_DELAY_SECONDS]
    assert 40 * 60 - 5 <= send.ddm_until - time.time() <= 40 * 60
    # And when it comes back 15 minutes later, the rest of the wait is queued again
    monkeypatch.setattr(ddm_module, "time", _Clock(send.ddm_until - 25 * 60))
    assert time_out(client.ctx, send_id, send.ddm_until) == "waiting on"
    monkeypatch.setattr(ddm_module, "time", _Clock(send.ddm_until - 10 * 60))
    assert time_out(client.ctx, send_id, send.ddm_until) == "waiting on"
    assert [m["DelaySeconds"] for m in sent[1:]] == [MAX_DELAY_SECONDS, 10 * 60]
    assert delayed_messages(stack) == 3
    assert stored(client, send_id).status is SendStatus.DISCOVERING
    # And at the deadline the MMS goes
    at_deadline(monkeypatch, send)
    assert time_out(client.ctx, send_id, send.ddm_until) == "timed out"
    assert run_send_queue(client, stack) == ["sent as MMS"]
    assert [r.subject for r in mmsc.received()] == ["We are detecting your handset", "Offer"]


def report_for(message_id: str) -> tuple[bytes, str]:
    """The MMSC's DeliveryReportReq for a message: retrieved, by a Samsung phone."""
    return mm7.build_delivery_report_req(
        transaction_id=f"dr-{message_id}",
        message_id=message_id,
        recipient=f"+{NEW_NUMBER}",
        sender="28444",
        mm_status=mm7.MMStatus.RETRIEVED,
        date=datetime.now(UTC),
        ua_prof=SAMSUNG,
    )


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.mark.parametrize("mmsc", ["silent"], indirect=True)
def test_a_report_after_the_timeout_sends_no_second_mms(
    client: Client, stack: Stack, mmsc: SimulatedMmsc, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a send whose DDM wait ran out, its MMS sent with generic settings
    send_id = send_with_ddm(client)
    assert run_send_queue(client, stack) == ["discovering the handset"]
    ddm = stored(client, send_id)
    at_deadline(monkeypatch, ddm)
    assert time_out(client.ctx, send_id, ddm.ddm_until) == "timed out"
    assert run_send_queue(client, stack) == ["sent as MMS"]
    # When the DDM's report comes after all (late), twice
    [ddm_submit, _] = mmsc.submissions()
    body, content_type = report_for(ddm_submit.message_id)
    mm7_report(client.ctx, body, content_type)
    mm7_report(client.ctx, body, content_type)
    # Then it teaches the handset cache, but nothing more is sent or told
    cached = client.ctx.handsets.get(NEW_NUMBER)
    assert cached is not None
    assert cached.profile_id == "android"
    assert run_send_queue(client, stack) == []
    assert len(mmsc.received()) == 2
    assert send_codes(stack) == ["N501", "N101"]
    assert stored(client, send_id).status is SendStatus.SENT


@pytest.mark.parametrize("first", ["report", "timeout"])
@pytest.mark.parametrize("mmsc", ["silent"], indirect=True)
def test_the_ddm_report_racing_the_timeout_sends_one_mms(
    client: Client,
    stack: Stack,
    mmsc: SimulatedMmsc,
    first: str,
) -> None:
    # Given a discovering send that the report and the timeout both read as discovering
    send_id = send_with_ddm(client)
    assert run_send_queue(client, stack) == ["discovering the handset"]
    read_by_report, read_by_timeout = stored(client, send_id), stored(client, send_id)
    # When both move it on, in either order
    if first == "report":
        learnt(client.ctx, read_by_report, True, "Android")
    assert move_on(client.ctx, read_by_timeout, None) is (first == "timeout")
    if first == "timeout":
        learnt(client.ctx, read_by_report, True, "Android")
    # Then exactly one MMS goes, and the DDM's report is told only if it won
    assert run_send_queue(client, stack) == ["sent as MMS"]
    assert run_send_queue(client, stack) == []
    assert [r.subject for r in mmsc.received()] == ["We are detecting your handset", "Offer"]
    codes = send_codes(stack)
    assert codes == (["N501", "N502", "N101"] if first == "report" else ["N501", "N101"])


@pytest.mark.parametrize("mmsc", ["refuse"], indirect=True)
def test_a_refused_ddm_is_told_then_the_mms_goes_at_once(
    client: Client, stack: Stack, mmsc: SimulatedMmsc, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an MMSC that refuses the DDM, and then takes the MMS
    real_handle = mmsc.handle

    def handle(*args: Any, **kwargs: Any) -> Any:
        answered = real_handle(*args, **kwargs)
        mmsc.rules = [Rule(match=".*", outcome="silent")]
        return answered

    monkeypatch.setattr(mmsc, "handle", handle)
    send_id = send_with_ddm(client)
    # When the send is delivered
    outcome = deliver(client.ctx, send_id)
    # Then E501 is told and the MMS goes in the same invocation, with generic settings
    assert outcome == "sent as MMS"
    assert [r.subject for r in mmsc.received()] == ["Offer"]
    assert send_codes(stack) == ["E501", "N101"]
    assert stored(client, send_id).discovered
    # And its timeout message, when it comes, is dropped
    assert time_out(client.ctx, send_id, int(time.time()) + 600) == "discovery over"


@pytest.mark.parametrize("mmsc", ["silent"], indirect=True)
def test_a_template_deleted_during_discovery_ends_the_send_with_e101(
    client: Client, stack: Stack, mmsc: SimulatedMmsc, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a send waiting for its DDM's report
    send_id = send_with_ddm(client)
    assert run_send_queue(client, stack) == ["discovering the handset"]
    send = stored(client, send_id)
    # When its template is deleted, then the wait runs out
    got = answer(
        client.post(
            f"<request><action>deleteMMSID</action><api-key>{client.api_key}</api-key>"
            f"<mms-id>{send.mms_id}</mms-id></request>"
        )
    )
    assert got["status"] == "Success", got
    at_deadline(monkeypatch, send)
    assert time_out(client.ctx, send_id, send.ddm_until) == "timed out"
    # Then the send ends with E101, and no MMS goes
    assert run_send_queue(client, stack) == ["failed"]
    assert [r.subject for r in mmsc.received()] == ["We are detecting your handset"]
    assert send_codes(stack) == ["N501", "E101"]
