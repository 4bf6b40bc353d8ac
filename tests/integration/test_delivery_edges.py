"""States that must never get stuck: regressions found in review."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from local.stack import Stack
from mmsapi import records
from mmsapi.errors import DomainError
from mmsapi.models import DdmRequest, Send, SendStatus
from mmsapi.services import context as context_module
from mmsapi.services.ddm import time_out
from mmsapi.services.deliver import HandedOverError, RetryLater, deliver
from mmsapi.services.encode import finalize
from mmsapi.services.sweep import settle_send
from mmsapi.services.view import render_view
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.media import template_prefix
from tests.conftest import Client, load_event
from tests.integration.conftest import DOWN, REFUSED, Carrier
from tests.integration.helpers import postback_events, relay_outbox
from tests.integration.test_deliver import send, template
from tests.lambda_context import FakeLambdaContext, load_handler_module

# Delivery reports are matched while AWS's indexes may still lag behind the send's write.
pytestmark = pytest.mark.gsi_lag(3600)
DAY = 86_400


def test_carrier_down_after_discovery_puts_the_send_back_on_the_queue(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    # Given a send whose discovery just ended, to a number whose carrier is down
    send_id = send(client, template(client, httpserver), DOWN)
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    stored.ddm = DdmRequest(text="hi", force=True)
    stored.status = SendStatus.DISCOVERING
    stored.ddm_until = int(time.time()) - 1
    client.ctx.sends.save(stored)
    aws.sqs().purge_queue(QueueUrl=stack.physical["SendQueue"])
    # When its DDM's timeout message comes, Then the send goes back to the send queue
    assert time_out(client.ctx, send_id, stored.ddm_until) == "timed out"
    relay_outbox(stack)
    got = aws.sqs().receive_message(QueueUrl=stack.physical["SendQueue"])["Messages"]
    assert [json.loads(m["Body"])["send_id"] for m in got] == [send_id]
    # And the carrier being down leaves it queued for the queue's retries
    with pytest.raises(RetryLater):
        deliver(client.ctx, send_id)
    # And from there it is never discovered again, even with ddm-force
    again = client.ctx.sends.get(send_id)
    assert again is not None
    assert (again.status, again.discovered) == (SendStatus.QUEUED, True)


def test_an_unreadable_carrier_answer_fails_the_send_without_resending(
    client: Client, stack: Stack, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an MMSC that answers 200 with something that is not MM7
    httpserver.expect_request("/mm7").respond_with_data("<html>proxy</html>")
    monkeypatch.setenv("MMS_MM7_URL", httpserver.url_for("/mm7"))
    get_settings.cache_clear()
    context_module.reset()
    client.ctx = context_module.context()
    send_id = send(client, template(client, httpserver), "14044790000")
    postback_events(stack)
    # When the send is delivered, Then it fails with E101 and is not sent again
    assert deliver(client.ctx, send_id) == "failed"
    assert [e["detail"]["code"] for e in postback_events(stack)] == ["E101"]
    assert deliver(client.ctx, send_id) == "not queued"


def test_a_claim_left_by_a_dead_worker_ends_with_e999(
    client: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    send_id = send(client, template(client, httpserver), "14044790000")
    postback_events(stack)
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    stored.status = SendStatus.SUBMITTING
    client.ctx.sends.save(stored)
    assert deliver(client.ctx, send_id) == "not queued"  # another worker may be on it
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    stored.updated_at -= timedelta(minutes=10)
    # SendStore.save stamps updated_at: write the aged record as it is.
    aws.dynamodb().put_item(
        TableName=client.ctx.sends.table,
        Item={
            "send_id": {"N": str(send_id)},
            "account_id": {"S": client.account.account_id},
            "status": {"S": "submitting"},
            "doc": {"S": records.to_json(stored)},
        },
    )
    assert deliver(client.ctx, send_id) == "interrupted"
    assert [e["detail"]["code"] for e in postback_events(stack)] == ["E999"]


def test_a_send_the_carrier_took_but_that_could_not_be_recorded_is_never_resubmitted(
    client: Client,
    stack: Stack,
    httpserver: HTTPServer,
    carrier: Carrier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a send the MMSC takes, whose `sent` write then fails (after botocore's retries)
    send_id = send(client, template(client, httpserver), "14044790000")
    postback_events(stack)
    save = client.ctx.sends.save

    def refuse_sent(stored: Send, *args: Any, **kwargs: Any) -> bool:
        if stored.status is SendStatus.SENT:
            raise DomainError("send write failed: throttled")
        return save(stored, *args, **kwargs)

    monkeypatch.setattr(client.ctx.sends, "save", refuse_sent)
    # When it is delivered, and its queue message comes back for the retry
    with pytest.raises(HandedOverError):
        deliver(client.ctx, send_id)
    assert deliver(client.ctx, send_id) == "not queued"
    # Then the MMSC got one SubmitReq, and the claim was kept (not given back)
    assert len(carrier.mmsc.submissions()) == 1
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.SUBMITTING
    # And the sweeper ends it past its claim (the index lags here: settle it by id)
    monkeypatch.delattr(client.ctx.sends, "save")  # the store works again
    assert settle_send(client.ctx, send_id, int(time.time()) + DAY) == "failed"
    assert [e["detail"]["code"] for e in postback_events(stack)] == ["E999"]


def test_renditions_uploaded_after_a_delete_are_removed_by_finalize(client: Client) -> None:
    key = template_prefix(client.account.account_id, 424242) + "slide-1/audio/mp3.mp3"
    client.ctx.media.put(key, b"late rendition", "audio/mpeg")
    event = {"mms_id": 424242, "account_id": client.account.account_id, "results": []}
    assert finalize(client.ctx, event)["status"] == "gone"
    assert client.ctx.media.keys(template_prefix(client.account.account_id, 424242)) == []


def test_an_absurd_page_token_is_404_not_an_error(client: Client) -> None:
    assert render_view(client.ctx, "9" * 40 + ".secret").status == 404


def test_a_report_body_that_is_not_base64_is_400(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMS_CARRIER_REPORT_TOKEN", "t" * 24)
    get_settings.cache_clear()
    event = {
        "pathParameters": {"channel": "mm7", "token": "t" * 24},
        "body": "%%%not base64",
        "isBase64Encoded": True,
        "headers": {},
    }
    result = load_handler_module("report").handler(event, FakeLambdaContext())
    assert result["statusCode"] == 400


def test_end_user_messaging_receipts_settle_fallback_sms(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    # Given a send that went as fallback SMS, and End User Messaging's SNS receipt for it
    send_id = send(client, template(client, httpserver), REFUSED)
    assert deliver(client.ctx, send_id) == "sent as SMS"
    postback_events(stack)
    sms_id = carrier.sms.sent[0]["message_id"]
    event = load_event("report/sns-sms-delivered.json")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    handler = load_handler_module("report").handler
    # When a receipt that is not final arrives, Then nothing is told yet
    pending = {**message, "messageId": sms_id, "isFinal": False, "messageStatus": "PENDING"}
    event["Records"][0]["Sns"]["Message"] = json.dumps(pending)
    assert handler(event, FakeLambdaContext()) == {"settled": 0}
    # When the final DELIVERED receipt arrives, Then N202
    event["Records"][0]["Sns"]["Message"] = json.dumps({**message, "messageId": sms_id})
    assert handler(event, FakeLambdaContext()) == {"settled": 1}
    assert [e["detail"]["code"] for e in postback_events(stack)] == ["N202"]
