"""Delivery behind the send queue: adaptation, MM7 to the (simulated) MMSC, delivery
reports, fallback SMS with the hosted page link."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from local.stack import Stack
from mmsapi.models import SendStatus
from mmsapi.services.deliver import RetryLater, deliver, retry_delay
from mmsapi.services.report import mm7_report, sms_report
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.conftest import DELIVERED_TO, DOWN, REFUSED, REJECTED, Carrier
from tests.integration.helpers import answer, postback_events
from tests.lambda_context import FakeLambdaContext, load_handler_module
from tests.media import photo_jpeg

# Delivery reports are matched while AWS's indexes may still lag behind the send's write.
pytestmark = pytest.mark.gsi_lag(3600)


def template(client: Client, httpserver: HTTPServer, extra: str = "") -> int:
    httpserver.expect_request("/p.jpg").respond_with_data(
        photo_jpeg(1600, 1200), content_type="image/jpeg"
    )
    got = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>d</name>"
            f"<message-subject>Hi {{$firstname|there}}</message-subject>{extra}"
            f"<slide><image><url>{httpserver.url_for('/p.jpg')}</url></image>"
            "<message-text>Hello {$firstname|customer}</message-text><duration>4</duration></slide>"
            "<slide><message-text>Second</message-text></slide></request>"
        )
    )
    assert got["status"] == "Success", got
    return int(got["mms-id"])


def send(client: Client, mms_id: int, to: str) -> int:
    got = answer(
        client.post(
            f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
            f"<mms-id>{mms_id}</mms-id><to>{to}</to><from>28444</from><service-id>12345</service-id>"
            "<fallback-sms-text>Your coupon:</fallback-sms-text>"
            "<custom-subject>Deal for {$firstname|you}</custom-subject>"
            "<data><firstname>Bill</firstname></data></request>"
        )
    )
    assert got["status"] == "Success", got
    return parse_tracking_id(got["tracking-id"]) or 0


def codes(stack: Stack) -> list[str]:
    return [e["detail"]["code"] for e in postback_events(stack)]


def test_mms_reaches_the_mmsc_then_its_report_gives_n102_and_teaches_the_handset(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    # Given a queued send with merge data
    mms_id = template(client, httpserver)
    postback_events(stack)  # N003 of the save
    send_id = send(client, mms_id, DELIVERED_TO)
    # When it is delivered
    assert deliver(client.ctx, send_id) == "sent as MMS"
    # Then the MMSC got one SubmitReq whose SMIL and parts match the slides, merged
    [received] = carrier.mmsc.received()
    assert received.recipients == [DELIVERED_TO]
    assert (received.sender, received.service_code) == ("28444", "12345")
    assert received.subject == "Deal for Bill"
    texts = [p.data.decode() for p in received.parts if p.content_type.startswith("text/plain")]
    assert texts == ["Hello Bill", "Second"]
    assert any(p.content_type == "image/jpeg" for p in received.parts)
    assert received.smil.count("<par") == 2
    assert 'dur="4s"' in received.smil
    # And N101 (sent as MMS) is announced; a second delivery of the same send does nothing
    assert codes(stack) == ["N101"]
    assert deliver(client.ctx, send_id) == "not queued"
    assert len(carrier.mmsc.received()) == 1
    # When the carrier's delivery report arrives
    carrier.wait_reports(1)
    _, body, content_type = carrier.reports[0]
    rsp = mm7_report(client.ctx, body, content_type)
    # Then it is acknowledged, N102 names the handset, and the number's handset is cached
    assert b"1000" in rsp
    [event] = postback_events(stack)
    assert event["detail"]["code"] == "N102"
    assert event["detail"]["fields"]["status"] == "Message Sent/Delivered"
    assert event["detail"]["fields"]["handset"] == "iPhone"
    cached = client.ctx.handsets.get(DELIVERED_TO)
    assert cached is not None
    assert cached.profile_id == "iphone"
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.DELIVERED


def test_rejected_report_is_e102(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    send_id = send(client, template(client, httpserver), REJECTED)
    deliver(client.ctx, send_id)
    carrier.wait_reports(1)
    _, body, content_type = carrier.reports[0]
    mm7_report(client.ctx, body, content_type)
    [*_, last] = postback_events(stack)
    assert last["detail"]["code"] == "E102"
    assert last["detail"]["fields"]["status"] == "Message Sent/Rejected"
    assert "handset" not in last["detail"]["fields"]  # told on delivery only


def test_refused_number_falls_back_to_sms_with_the_page_link_then_n202(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    # Given a number the carrier refuses MMS for
    send_id = send(client, template(client, httpserver), REFUSED)
    postback_events(stack)
    # When it is delivered
    assert deliver(client.ctx, send_id) == "sent as SMS"
    # Then an SMS with the fallback text and the hosted page link went out
    [sms] = carrier.sms.sent
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert sms["to"] == REFUSED
    assert sms["text"] == (f"Your coupon: https://mms.example.com/v/{send_id}.{stored.view_secret}")
    [event] = postback_events(stack)
    assert (event["detail"]["code"], event["detail"]["fields"]["sent-as"]) == ("N101", "SMS")
    # And its delivery receipt gives N202
    carrier.wait_reports(1)
    assert sms_report(client.ctx, sms["message_id"], delivered=True)
    assert codes(stack) == ["N202"]


def test_disabled_fallback_fails_with_e101(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    mms_id = template(client, httpserver, "<disable-fallback-sms>yes</disable-fallback-sms>")
    send_id = send(client, mms_id, REFUSED)
    postback_events(stack)
    assert deliver(client.ctx, send_id) == "failed"
    [event] = postback_events(stack)
    assert (event["detail"]["code"], event["detail"]["fields"]["status"]) == (
        "E101",
        "Message Failed",
    )
    assert carrier.sms.sent == []


def test_carrier_down_gives_the_send_back_for_a_retry(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    send_id = send(client, template(client, httpserver), DOWN)
    postback_events(stack)
    with pytest.raises(RetryLater):
        deliver(client.ctx, send_id)
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.QUEUED
    assert postback_events(stack) == []


def test_a_send_the_carrier_never_takes_ends_with_e999(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    # Given a send to a number whose carrier stays unavailable, on its queue
    send_id = send(client, template(client, httpserver), DOWN)
    postback_events(stack)
    handler = load_handler_module("deliver").handler
    queue = stack.physical["SendQueue"]
    # When the deliver function receives it once per attempt
    results = []
    for _attempt in range(get_settings().send_max_attempts):
        got = aws.sqs().receive_message(
            QueueUrl=queue,
            MaxNumberOfMessages=1,
            VisibilityTimeout=0,
            MessageSystemAttributeNames=["All"],
        )["Messages"][0]
        event = {
            "Records": [
                {
                    "messageId": got["MessageId"],
                    "receiptHandle": got["ReceiptHandle"],
                    "body": got["Body"],
                    "attributes": got["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": got["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                    "awsRegion": "us-east-1",
                }
            ]
        }
        results.append(handler(event, FakeLambdaContext()))
        # the handler pushed the retry back: bring it forward for the test
        aws.sqs().change_message_visibility(
            QueueUrl=queue, ReceiptHandle=got["ReceiptHandle"], VisibilityTimeout=0
        )
    # Then every attempt but the last is reported failed (retried), the last gives up
    assert [len(r["batchItemFailures"]) for r in results] == [1, 1, 1, 1, 0]
    [event_sent] = postback_events(stack)
    assert event_sent["detail"]["code"] == "E999"
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.FAILED


def test_retry_waits_double() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
