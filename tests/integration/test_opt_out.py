"""SMS from phones (N402), and STOP/START/HELP from SMS and MMS: E114, replies, records.

Each function runs as itself (its role, through the IAM gate): End User Messaging's SNS
message into ReportFunction, the MMSC's DeliverReq too, sends into ApiFunction (whose
transaction checks the opt-out), the outbox relay and PostbackFunction to the account's
URL. Replies go to the simulated SMS gateway (the `carrier` fixture).
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from typing import Any

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from local.aws_gate import acting_as
from local.stack import Stack
from mmsapi.admin.changes import parse_change
from mmsapi.models import Dialect, SendStatus
from mmsapi.records import RecordError
from mmsapi.services.accounts import set_postback
from mmsapi.services.deliver import OPTED_OUT, deliver
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.opt_outs import REPLY_CLAIM_SECONDS, Action, OptOutStore
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client, load_event
from tests.integration.conftest import Carrier
from tests.integration.helpers import answer, postback_events
from tests.integration.test_admin_accounts import cli, run_admin  # noqa: F401 (fixture)
from tests.integration.test_inbound import (  # noqa: F401 (the autouse fixture)
    PHONE,
    TOKEN,
    _fresh_postback_module,
    deliver_postbacks,
    mm7_status,
    post,
    reply,
)
from tests.integration.test_send import saved, send_xml
from tests.lambda_context import FakeLambdaContext, load_handler_module

NUMBER = "+12125550101"  # the account's long code, as End User Messaging writes it
CODE = "12125550101"


@pytest.fixture
def phones(
    client: Client, carrier: Carrier, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> Client:
    """Given the demo account with a second number (a long code), inbox keywords and a
    postback URL, and the simulated SMS gateway for its replies."""
    monkeypatch.setenv("MMS_CARRIER_REPORT_TOKEN", TOKEN)
    get_settings.cache_clear()
    account_id = client.account.account_id
    set_postback(client.ctx.accounts, account_id, httpserver.url_for("/pb"), new_secret=True)
    change = parse_change({"inbox_keywords": "yes,join", "add_shortcode": [f"{CODE}:US"]})
    client.ctx.accounts.change(account_id, change)
    return client


def sms(body: str, message_id: str = "cae173d2-66b9-564c-8309-21f858e9fb84") -> dict[str, Any]:
    """End User Messaging's two-way SMS message (from the phone to NUMBER), as SNS hands
    it to ReportFunction (events/report/sns-sms-inbound-stop.json, its text and id set)."""
    message = json.loads(sns("")["Records"][0]["Sns"]["Message"])
    return sns(json.dumps({**message, "messageBody": body, "inboundMessageId": message_id}))


def sns(message: str) -> dict[str, Any]:
    """The SNS event of events/report/sns-sms-inbound-stop.json carrying `message` (if any)."""
    event = load_event("report/sns-sms-inbound-stop.json")
    if message:
        event["Records"][0]["Sns"]["Message"] = message
    return event


def report(event: dict[str, Any]) -> dict[str, Any]:
    with acting_as("ReportFunction"):
        result: dict[str, Any] = load_handler_module("report").handler(event, FakeLambdaContext())
    return result


def send(client: Client, mms_id: int, to: str = PHONE) -> dict[str, str]:
    with acting_as("ApiFunction"):
        return answer(client.post(send_xml(client, mms_id, {"to": to})))


def told(stack: Stack, httpserver: HTTPServer) -> list[etree._Element]:
    """The MO postbacks (N401, N402) the account's URL received."""
    bodies = [etree.fromstring(body) for body, _ in deliver_postbacks(stack, httpserver)]
    return [b for b in bodies if str(b.findtext("origin")).endswith("_MO")]


def replies(carrier: Carrier) -> list[str]:
    return [str(sent["text"]) for sent in carrier.sms.sent if sent["to"] == PHONE]


@pytest.mark.parametrize("dialect", [Dialect.CURRENT, Dialect.LEGACY])
def test_an_sms_from_a_phone_reaches_the_account_as_n402(
    phones: Client, carrier: Carrier, stack: Stack, httpserver: HTTPServer, dialect: Dialect
) -> None:
    # Given the account in the dialect under test
    account_id = phones.account.account_id
    phones.ctx.accounts.change(account_id, parse_change({"postback_dialect": dialect.value}))
    # When a phone texts "JOIN now!" to the account's long code
    assert report(sms("JOIN now!")) == {"settled": 1}
    # Then the account gets N402 with the sender, its number, the keyword and the text
    [(body, _)] = deliver_postbacks(stack, httpserver)
    postback = etree.fromstring(body)
    legacy = dialect is Dialect.LEGACY
    names = (
        ("ORIGIN", "CODE", "FROM", "TO", "KEYWORD", "TRACKINGID", "TEXT")
        if legacy
        else ("origin", "code", "from", "to", "keyword", "tracking-id", "message-text")
    )
    values = [postback.findtext(name) for name in names]
    assert values[:6] == ["SMS_MO", "N402", PHONE, CODE, "join", values[5]]
    assert str(values[5]).startswith("SMS_MO_")
    assert values[6] == "JOIN now!"
    assert postback.find("SUBJECT" if legacy else "message-subject") is None
    # And no reply is sent: JOIN is an inbox keyword, not STOP/START/HELP
    assert replies(carrier) == []


def test_stop_by_sms_refuses_the_next_send_and_start_allows_it_again(
    phones: Client, carrier: Carrier, stack: Stack, httpserver: HTTPServer
) -> None:
    mms_id = saved(phones)
    assert send(phones, mms_id)["status"] == "Success"
    # When the phone texts STOP
    assert report(sms("Stop", "in-stop-1")) == {"settled": 1}
    # Then the next send to it answers E114, at once
    got = send(phones, mms_id)
    assert (got["status"], got["error-code"]) == ("Failure", "E114")
    # And the phone got the account's opt-out confirmation, from the number it wrote to
    [confirmation] = [s for s in carrier.sms.sent if s["to"] == PHONE]
    assert confirmation["from"] == CODE
    assert str(confirmation["text"]).startswith("demo: You are unsubscribed")
    # And the account is told, with the keyword
    [postback] = told(stack, httpserver)
    assert (postback.findtext("code"), postback.findtext("keyword")) == ("N402", "stop")
    # When the phone texts START
    assert report(sms("START", "in-start-1")) == {"settled": 1}
    # Then sends to it are accepted again, and it was told so
    assert send(phones, mms_id)["status"] == "Success"
    assert replies(carrier)[-1].startswith("demo: You are subscribed again")
    # And both are recorded for compliance: time, number, keyword, source, message id
    events = OptOutStore().events(phones.account.account_id)
    assert [(e.action, e.keyword, e.source, e.shortcode) for e in events] == [
        (Action.OPT_OUT, "stop", "sms", CODE),
        (Action.OPT_IN, "start", "sms", CODE),
    ]
    assert [e.message_id for e in events] == ["in-stop-1", "in-start-1"]
    assert all(e.number == PHONE and e.at and e.reply_id for e in events)


def test_every_opt_out_keyword_opts_out(phones: Client, carrier: Carrier) -> None:
    mms_id = saved(phones)
    others = ["14045550100", "14045550101", "14045550102", "14045550103", "14045550104"]
    words = ["STOPALL", "unsubscribe", "Cancel", "END.", "quit"]
    for number, word in zip(others, words, strict=True):
        message = json.loads(sms(word, f"in-{word}")["Records"][0]["Sns"]["Message"])
        message["originationNumber"] = f"+{number}"
        assert report(sns(json.dumps(message))) == {"settled": 1}
        assert send(phones, mms_id, to=number)["error-code"] == "E114", word
    # And "stop" later in a text opts nobody out
    assert report(sms("please do not stop", "in-later")) == {"settled": 1}
    assert send(phones, mms_id)["status"] == "Success"


def test_help_is_answered_with_the_account_s_help_text(phones: Client, carrier: Carrier) -> None:
    # Given the account's own help text
    change = parse_change({"help_text": "{account} deals: call 800-555-0100. Reply STOP to end."})
    phones.ctx.accounts.change(phones.account.account_id, change)
    # When the phone texts HELP
    assert report(sms("help", "in-help")) == {"settled": 1}
    # Then it gets that text, and nothing is opted out
    assert replies(carrier) == ["demo deals: call 800-555-0100. Reply STOP to end."]
    assert not OptOutStore().opted_out(phones.account.account_id, PHONE)
    [event] = OptOutStore().events(phones.account.account_id)
    assert (event.action, event.keyword) == (Action.HELP, "help")


def test_an_sms_sent_again_is_recorded_answered_and_told_once(
    phones: Client, carrier: Carrier, stack: Stack, httpserver: HTTPServer
) -> None:
    # When SNS delivers the same STOP twice (Lambda's retry, or a publish again)
    assert report(sms("STOP", "in-twice")) == {"settled": 1}
    assert report(sms("STOP", "in-twice")) == {"settled": 1}
    # Then one record, one confirmation, and postbacks that all carry one id (told
    # once or, at least once, twice with that id)
    assert len(OptOutStore().events(phones.account.account_id)) == 1
    assert len(replies(carrier)) == 1
    bodies = told(stack, httpserver)
    assert 1 <= len(bodies) <= 2
    assert len({b.findtext("tracking-id") for b in bodies}) == 1


def test_a_reply_that_fails_is_sent_when_the_sms_comes_again(
    phones: Client, carrier: Carrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an SMS gateway that is down
    from mmsapi.carrier.mm7_client import CarrierUnavailable

    ctx = phones.ctx

    def down(to: str, sender: str, text: str) -> str:
        raise CarrierUnavailable("SMS gateway: down")

    monkeypatch.setattr(ctx.sms, "send", down)
    # When a STOP comes, Then its handling fails (Lambda retries it), but it is recorded
    with pytest.raises(CarrierUnavailable):
        report(sms("STOP", "in-retry"))
    assert OptOutStore().opted_out(phones.account.account_id, PHONE)
    # When it comes again with the gateway up, Then the confirmation goes, once
    monkeypatch.undo()
    monkeypatch.setenv("MMS_CARRIER_REPORT_TOKEN", TOKEN)
    assert report(sms("STOP", "in-retry")) == {"settled": 1}
    assert len(replies(carrier)) == 1
    [event] = OptOutStore().events(phones.account.account_id)
    assert event.reply_id


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1, 2]",
        json.dumps({"originationNumber": "+14082257140"}),
        json.dumps({"originationNumber": "call me", "destinationNumber": NUMBER,
                    "messageBody": "STOP", "inboundMessageId": "x"}),
        json.dumps({"originationNumber": f"+{PHONE}", "destinationNumber": NUMBER,
                    "messageBody": 7, "inboundMessageId": "x"}),
        json.dumps({"originationNumber": f"+{PHONE}", "destinationNumber": NUMBER,
                    "messageBody": "STOP", "inboundMessageId": "x" * 500}),
    ],
    ids=["not-json", "a-list", "fields-missing", "no-number", "body-not-text", "id-too-long"],
)  # fmt: skip
def test_a_malformed_sns_message_is_dropped_without_retry(
    phones: Client, carrier: Carrier, stack: Stack, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a message that is no inbound SMS arrives, Then the handler ends normally (no
    # retry), counts it, and nothing is recorded or sent
    assert report(sns(message)) == {"settled": 0}
    assert "SnsMessagesMalformed" in capsys.readouterr().out
    assert OptOutStore().events(phones.account.account_id) == []
    assert replies(carrier) == []


def test_a_text_with_a_lone_surrogate_is_received_and_told(
    phones: Client, carrier: Carrier, stack: Stack, httpserver: HTTPServer
) -> None:
    # When the JSON text holds half a surrogate pair (JSON allows it, UTF-8 does not)
    assert report(sms("STOP \ud83d now", "in-surrogate")) == {"settled": 1}
    # Then it is received whole, the half pair replaced, and the phone opted out
    [postback] = told(stack, httpserver)
    assert postback.findtext("message-text") == "STOP ? now"
    assert OptOutStore().opted_out(phones.account.account_id, PHONE)


def test_an_sms_to_a_number_no_account_holds_is_dropped(phones: Client, carrier: Carrier) -> None:
    message = json.loads(sms("STOP")["Records"][0]["Sns"]["Message"])
    message["destinationNumber"] = "+13125550199"
    assert report(sns(json.dumps(message))) == {"settled": 0}
    assert OptOutStore().events(phones.account.account_id) == []
    assert replies(carrier) == []


def test_stop_in_an_mms_refuses_the_next_send_and_start_allows_it_again(
    phones: Client, carrier: Carrier, stack: Stack, httpserver: HTTPServer
) -> None:
    mms_id = saved(phones)
    # When the phone replies by MMS with a picture and "STOP"
    stop = reply("STOP")
    assert mm7_status(post(*stop)) == "1000"
    # Then the next send answers E114, the phone is told from the shortcode, N401 says stop
    assert send(phones, mms_id)["error-code"] == "E114"
    [confirmation] = [s for s in carrier.sms.sent if s["to"] == PHONE]
    assert confirmation["from"] == "28444"
    [postback] = told(stack, httpserver)
    assert (postback.findtext("code"), postback.findtext("keyword")) == ("N401", "stop")
    # And the MMSC's resend changes nothing more
    assert mm7_status(post(*stop)) == "1000"
    assert len(replies(carrier)) == 1
    # When it replies "start" by MMS, Then sends are accepted again
    assert mm7_status(post(*reply("start"))) == "1000"
    assert send(phones, mms_id)["status"] == "Success"
    events = OptOutStore().events(phones.account.account_id)
    assert [(e.action, e.source, e.shortcode) for e in events] == [
        (Action.OPT_OUT, "mms", "28444"),
        (Action.OPT_IN, "mms", "28444"),
    ]


def test_send_mms_to_a_number_that_opted_out_is_e114_and_stores_nothing(
    phones: Client, carrier: Carrier, stack: Stack
) -> None:
    assert report(sms("STOP", "in-sendmms")) == {"settled": 1}
    xml = (
        f"<request><action>sendMMS</action><api-key>{phones.api_key}</api-key><to>{PHONE}</to>"
        "<from>28444</from><service-id>12345</service-id><name>n</name>"
        "<fallback-sms-text>see</fallback-sms-text>"
        "<slide><message-text>hello</message-text></slide></request>"
    )
    with acting_as("ApiFunction"):
        got = answer(phones.post(xml))
    assert got["error-code"] == "E114"
    templates = aws.dynamodb().scan(TableName=stack.physical["TemplatesTable"])["Items"]
    assert templates == []  # refused before anything was fetched or saved


@pytest.mark.usefixtures("cli")
def test_keywords_and_texts_are_managed_and_records_read_by_the_admin(
    phones: Client, carrier: Carrier, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = phones.account.account_id
    # When the operator sets the account's keywords and texts
    out = run_admin(
        capsys, "update", account_id, "--opt-out-keywords", "stop,arret",
        "--opt-out-text", "{account}: ok, no more. START to come back.",
        "--help-keywords", "help,aide",
    )  # fmt: skip
    assert re.search(r"opt-out-keywords:\s+stop, arret\n", out)
    # Then the phone's ARRET opts out with that text, and AIDE gets help
    assert report(sms("ARRET", "in-arret")) == {"settled": 1}
    assert report(sms("aide", "in-aide")) == {"settled": 1}
    assert replies(carrier)[0] == "demo: ok, no more. START to come back."
    assert replies(carrier)[1].startswith("demo: Reply STOP to cancel")
    # And `opt-outs` prints the record and the numbers opted out now
    out = run_admin(capsys, "opt-outs", account_id)
    assert "opt-out  arret" in out
    assert "help     aide" in out
    assert "in-arret" in out
    assert "2026-11-23T12:00:00+00:00" in out  # received (SNS Timestamp), beside processed
    assert f"opted out now: {PHONE}" in out
    out = run_admin(capsys, "opt-outs", account_id, "--number", "+14045550100")
    assert "opted out now: (none)" in out
    assert "in-arret" not in out
    # And a keyword in two sets is refused, nothing stored
    with pytest.raises(SystemExit) as exited:
        run_admin(capsys, "update", account_id, "--opt-in-keywords", "arret")
    assert exited.value.code == 2


def _stopped_while_queued(phones: Client, body: str = "") -> int:
    """A send accepted (queued), then the phone's STOP before it is delivered."""
    mms_id = saved(phones)
    got = send(phones, mms_id) if not body else answer(phones.post(body))
    assert got["status"] == "Success", got
    assert report(sms("STOP", f"in-stop-{got['tracking-id']}")) == {"settled": 1}
    return parse_tracking_id(got["tracking-id"]) or 0


def test_a_send_accepted_before_the_stop_is_never_delivered(
    phones: Client, carrier: Carrier, stack: Stack
) -> None:
    # Given a send accepted, then the phone's STOP while it waits in the queue
    send_id = _stopped_while_queued(phones)
    postback_events(stack)
    # When it is delivered
    with acting_as("DeliverFunction"):
        assert deliver(phones.ctx, send_id) == "failed"
    # Then nothing reaches the phone (no MMS, no fallback SMS: only the STOP's confirmation)
    assert carrier.mmsc.received() == []
    [confirmation] = replies(carrier)
    assert confirmation.startswith("demo: You are unsubscribed")
    # And the send ends with its final postback, E101, saying why
    stored = phones.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.FAILED
    [event] = [e["detail"] for e in postback_events(stack) if e["detail"].get("code") == "E101"]
    assert event["fields"]["status-details"] == OPTED_OUT


def test_a_stop_before_the_device_discovery_message_sends_no_ddm(
    phones: Client, carrier: Carrier, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given a send with DDM fields accepted, then the phone's STOP before it is delivered
    mms_id = saved(phones)
    ddm = (
        "<ddm-message-subject>Detecting</ddm-message-subject>"
        "<ddm-message-text>free</ddm-message-text><ddm-force>true</ddm-force>"
    )
    body = send_xml(phones, mms_id, {"to": PHONE}).replace("</request>", ddm + "</request>")
    with acting_as("ApiFunction"):
        got = answer(phones.post(body))
    send_id = parse_tracking_id(got["tracking-id"]) or 0
    assert report(sms("STOP", "in-stop-ddm")) == {"settled": 1}
    # When the send queue hands it to delivery, which would send the DDM first
    with acting_as("DeliverFunction"):
        assert deliver(phones.ctx, send_id) == "failed: opted out"
    # Then no DDM and no MMS is sent, the send ends with E101, and a redelivered queue
    # message does nothing more
    assert carrier.mmsc.received() == []
    stored = phones.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.FAILED
    assert stored.history[-1].postback == "E101"
    with acting_as("DeliverFunction"):
        assert deliver(phones.ctx, send_id) == "not queued"


def _disable(phones: Client, enabled: bool = False) -> None:
    phones.ctx.accounts.change(
        phones.account.account_id, lambda a: dataclasses.replace(a, enabled=enabled)
    )


def test_a_stop_while_the_account_is_disabled_still_opts_out(
    phones: Client, carrier: Carrier, stack: Stack, httpserver: HTTPServer
) -> None:
    mms_id = saved(phones)
    # Given the account disabled
    _disable(phones)
    # When the phone texts STOP, and replies STOP by MMS from a second phone
    assert report(sms("STOP", "in-stop-disabled")) == {"settled": 1}
    stop = reply("STOP")
    body = stop[0].replace(f">{PHONE}<".encode(), b">14082257141<")
    assert mm7_status(post(body, stop[1])) == "1000"
    # Then both are recorded and confirmed (carriers require it), the account told nothing
    account_id = phones.account.account_id
    assert [e.number for e in OptOutStore().events(account_id)] == [PHONE, "14082257141"]
    assert len([s for s in carrier.sms.sent if s["text"].startswith("demo: You are")]) == 2
    assert told(stack, httpserver) == []
    # And a message that is no keyword is still refused as today (2003), and not recorded
    assert mm7_status(post(*reply("hello"))) == "2003"
    # And once enabled again, sends to both answer E114
    _disable(phones, enabled=True)
    assert send(phones, mms_id)["error-code"] == "E114"
    assert send(phones, mms_id, to="14082257141")["error-code"] == "E114"


@pytest.mark.parametrize("written", ["4082257140", "0014082257140", "+1 408-225-7140"])
def test_an_mms_stop_from_a_sender_written_otherwise_blocks_sends_to_it(
    phones: Client, carrier: Carrier, stack: Stack, httpserver: HTTPServer, written: str
) -> None:
    # Given the MMSC names the phone in national form, with 00, or with separators
    mms_id = saved(phones)
    stop = reply("STOP")
    body = stop[0].replace(f">{PHONE}<".encode(), f">{written}<".encode())
    assert body != stop[0]
    # When it sends STOP to the US shortcode
    assert mm7_status(post(body, stop[1])) == "1000"
    # Then the number sends name is opted out, and N401 names it so too
    assert OptOutStore().opted_out(phones.account.account_id, PHONE)
    assert send(phones, mms_id, to="+14082257140")["error-code"] == "E114"
    [postback] = told(stack, httpserver)
    assert postback.findtext("from") == PHONE


def test_an_mms_sender_that_is_no_number_is_refused(phones: Client, carrier: Carrier) -> None:
    stop = reply("STOP")
    body = stop[0].replace(f">{PHONE}<".encode(), b">+1 408 CALL NOW<")
    assert mm7_status(post(body, stop[1])) == "4004"
    assert OptOutStore().events(phones.account.account_id) == []


def test_the_same_stop_delivered_twice_at_once_is_confirmed_once(
    phones: Client, carrier: Carrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first delivery of a STOP is sending its confirmation
    real = phones.ctx.sms.send
    inside, release = threading.Event(), threading.Event()

    def slow(to: str, sender: str, text: str) -> str:
        inside.set()
        assert release.wait(10)
        return real(to, sender, text)

    monkeypatch.setattr(phones.ctx.sms, "send", slow)
    first = threading.Thread(target=report, args=(sms("STOP", "in-dup"),))
    first.start()
    assert inside.wait(10)
    inside.clear()
    # When SNS delivers the same message again meanwhile
    assert report(sms("STOP", "in-dup")) == {"settled": 1}
    release.set()
    first.join(10)
    # Then the second did not send (it found the reply claimed): one confirmation
    assert not inside.is_set()
    assert len(replies(carrier)) == 1
    [event] = OptOutStore().events(phones.account.account_id)
    assert event.reply_id


def test_a_stale_reply_claim_is_taken_over(phones: Client, carrier: Carrier) -> None:
    # Given a STOP recorded whose replier died after claiming the reply
    store = OptOutStore()
    failing = phones.ctx.sms
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(failing, "send", lambda *_a: (_ for _ in ()).throw(SystemExit(1)))
        with pytest.raises(SystemExit):
            report(sms("STOP", "in-stale"))
    [event] = store.events(phones.account.account_id)
    claimed = time.time() - REPLY_CLAIM_SECONDS - 5
    assert store.claim_reply(event, now=claimed)  # its claim, 65 s ago
    assert not store.claim_reply(event, now=claimed + 1)  # then fresh: held
    # When the message comes again past the claim's time, Then it is answered
    assert report(sms("STOP", "in-stale")) == {"settled": 1}
    assert len(replies(carrier)) == 1


def test_the_record_keeps_when_the_stop_was_received_and_processed(
    phones: Client, carrier: Carrier
) -> None:
    event = sms("STOP", "in-time")
    event["Records"][0]["Sns"]["Timestamp"] = "2026-11-26T01:50:03.123Z"
    assert report(event) == {"settled": 1}
    [record] = OptOutStore().events(phones.account.account_id)
    assert record.received_at == "2026-11-26T01:50:03.123000+00:00"
    assert record.at > "2026-11-26T01:50:04"  # processed: now
    # And an MMS STOP keeps the MMSC's TimeStamp
    stop = reply("STOP")
    assert mm7_status(post(*stop)) == "1000"
    mms = [e for e in OptOutStore().events(phones.account.account_id) if e.source == "mms"]
    assert mms[0].received_at
    assert mms[0].received_at != mms[0].at


def test_a_failure_of_ours_is_retried_not_dropped_as_malformed(
    phones: Client, carrier: Carrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stored account that does not decode (records.RecordError is a ValueError)
    def corrupt(*_args: object) -> None:
        raise RecordError("corrupt account item")

    monkeypatch.setattr("mmsapi.services.sms_inbound.account_by_shortcode", corrupt)
    # When an SMS comes, Then the invocation fails (Lambda retries, then the DLQ keeps it)
    with pytest.raises(RecordError):
        report(sms("STOP", "in-ours"))
