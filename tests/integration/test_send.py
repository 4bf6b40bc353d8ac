"""sendSavedMMS and sendMMS acceptance: every field's check, the record, the queue."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from pytest_httpserver import HTTPServer

from local.stack import Stack
from mmsapi.models import SendStatus, Shortcode, TemplateStatus
from mmsapi.services.accounts import create_account
from mmsapi.services.encode import encoding_input, finalize
from mmsapi.store import aws
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.helpers import answer, postback_events, relay_outbox
from tests.media import tone_wav

US = "14044790000"
UK = "447400123456"


def saved(client: Client, extra: str = "") -> int:
    got = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>n</name>"
            f"<message-subject>Hi {{$firstname|you}}</message-subject>{extra}"
            "<slide><message-text>one</message-text></slide>"
            "<slide><message-text>two</message-text></slide></request>"
        )
    )
    assert got["status"] == "Success", got
    return int(got["mms-id"])


def send_xml(
    client: Client,
    mms_id: int | str | None,
    fields: Mapping[str, str | None] | None = None,
    extra: str = "",
) -> str:
    values: dict[str, str | None] = {
        "to": US,
        "from": "28444",
        "service-id": "12345",
        "fallback-sms-text": "See it here",
    }
    values.update(fields or {})
    if mms_id is not None:
        values["mms-id"] = str(mms_id)
    body = "".join(f"<{k}>{v}</{k}>" for k, v in values.items() if v is not None)
    return (
        f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
        f"{body}{extra}</request>"
    )


def queued(stack: Stack) -> list[int]:
    relay_outbox(stack)  # accepted sends reach the queue through the outbox
    url = stack.physical["SendQueue"]
    got = aws.sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"])["send_id"] for m in got.get("Messages", [])]


def test_accepted_send_is_recorded_queued_and_answered_like_the_documents(
    client: Client, stack: Stack
) -> None:
    # Given a saved template
    mms_id = saved(client, "<client-reference>camp</client-reference>")
    # When it is sent with custom text, subject and merge data
    got = answer(
        client.post(
            send_xml(
                client,
                mms_id,
                extra=(
                    "<custom-text><value>My custom text</value><slide>1</slide></custom-text>"
                    "<custom-subject>Custom</custom-subject><data><FirstName>Bill</FirstName></data>"
                ),
            )
        )
    )
    # Then the answer has the documented fields and a tracking-id of the MMS_<n> shape
    assert list(got) == ["status", "mms-id", "tracking-id", "to", "from", "status-details"]
    assert got["status-details"] == "MMS request accepted and queued for delivery"
    assert (got["to"], got["from"], got["mms-id"]) == (US, "28444", str(mms_id))
    send_id = parse_tracking_id(got["tracking-id"])
    assert send_id is not None
    # And the send is recorded with everything delivery needs, and queued
    send = client.ctx.sends.get(send_id)
    assert send is not None
    assert send.status is SendStatus.QUEUED
    assert send.data == {"firstname": "Bill"}
    assert [(c.slide, c.value) for c in send.custom_texts] == [(1, "My custom text")]
    assert send.client_reference == ""  # the template's "camp" is not the send's
    assert queued(stack) == [send_id]


def test_legacy_send_needs_no_serviceid_and_takes_the_templates_fallback(client: Client) -> None:
    mms_id = saved(client, "<fallback-sms-text>From the template</fallback-sms-text>")
    got = answer(
        client.post(
            f"<REQUEST><ACTION>sendSavedMMS</ACTION><API_KEY>{client.api_key}</API_KEY>"
            f"<MMSID>{mms_id}</MMSID><TO>{US}</TO><FROM>28444</FROM>"
            "<OPERATORID>not-checked-in-legacy</OPERATORID><CAMPAIGNREF>x</CAMPAIGNREF></REQUEST>"
        )
    )
    assert got["STATUS"] == "Success", got
    send = client.ctx.sends.get(parse_tracking_id(got["TRACKINGID"]) or 0)
    assert send is not None
    assert (send.service_id, send.fallback_sms_text) == ("12345", "From the template")


def test_recipient_abroad_gets_the_countrys_default_shortcode(client: Client) -> None:
    client.account.shortcodes.append(Shortcode(code="60000", country="GB", default=True))
    client.ctx.accounts.put(client.account)
    got = answer(client.post(send_xml(client, saved(client), {"to": UK})))
    assert (got["status"], got["from"]) == ("Success", "60000")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"to": "12345"}, "E110"),
        ({"to": "not-a-number"}, "E110"),
        ({"to": None}, "E110"),
        ({"from": "99999"}, "E111"),
        ({"to": UK}, "E111"),  # no shortcode of the account serves GB
        ({"service-id": None}, "E627"),
        ({"service-id": "777"}, "E627"),
        ({"operator-id": "abc"}, "E650"),
        ({"fallback-sms-text": None}, "E622"),
        ({"client-reference": "r" * 65}, "E100"),
        ({"ddm-message-subject": "Who are you"}, "E100"),  # DDM without its mandatory text
        ({"ddm-message-text": "hi", "ddm-message-timeout": "0"}, "E100"),
    ],
)
def test_each_bad_field_gets_its_code_and_the_answer_names_the_recipient(
    client: Client, stack: Stack, fields: dict[str, str | None], code: str
) -> None:
    got = answer(client.post(send_xml(client, saved(client), fields)))
    assert (got["status"], got["error-code"]) == ("Failure", code), got
    assert list(got) == ["status", "error-code", "to", "error-info"]
    assert queued(stack) == []


def test_blacklisted_and_unknown_operator(client: Client) -> None:
    client.account.blocked_numbers = [US]
    client.account.operator_ids = ["383"]
    client.ctx.accounts.put(client.account)
    mms_id = saved(client)
    assert answer(client.post(send_xml(client, mms_id)))["error-code"] == "E114"
    other = {"to": "14045550100", "operator-id": "999"}
    assert answer(client.post(send_xml(client, mms_id, other)))["error-code"] == "E651"
    other["operator-id"] = "383"
    assert answer(client.post(send_xml(client, mms_id, other)))["status"] == "Success"


@pytest.mark.parametrize(
    ("mms_id", "code"), [(None, "E620"), ("", "E620"), ("abc", "E241"), ("999999999", "E241")]
)
def test_mms_id_checks(client: Client, mms_id: str | None, code: str) -> None:
    assert answer(client.post(send_xml(client, mms_id)))["error-code"] == code


def test_another_accounts_template_is_e241(client: Client) -> None:
    # (a shortcode belongs to one account: the other sends from its own)
    _, other_key = create_account(
        client.ctx.accounts, "other", shortcodes=[Shortcode(code="28555")], service_id="12345"
    )
    mms_id = saved(client)
    client.api_key = other_key
    sent = client.post(send_xml(client, mms_id, {"from": "28555"}))
    assert answer(sent)["error-code"] == "E241"


def test_custom_text_must_name_a_slide_and_fit(client: Client) -> None:
    mms_id = saved(client)
    bad_slide = "<custom-text><value>x</value><slide>3</slide></custom-text>"
    no_value = "<custom-text><slide>1</slide></custom-text>"
    too_long = f"<custom-text><value>{'x' * 5001}</value><slide>1</slide></custom-text>"
    assert answer(client.post(send_xml(client, mms_id, extra=bad_slide)))["error-code"] == "E100"
    assert answer(client.post(send_xml(client, mms_id, extra=no_value)))["error-code"] == "E100"
    assert answer(client.post(send_xml(client, mms_id, extra=too_long)))["error-code"] == "E228"


def audio_template(client: Client, httpserver: HTTPServer) -> int:
    httpserver.expect_request("/a.wav").respond_with_data(tone_wav(), content_type="audio/wav")
    got = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>a</name>"
            f"<message-subject>s</message-subject><slide><audio><url>{httpserver.url_for('/a.wav')}"
            "</url></audio></slide></request>"
        )
    )
    return int(got["mms-id"])


def test_template_still_encoding_is_e626_and_failed_is_e241(
    client: Client, httpserver: HTTPServer
) -> None:
    # Given a template whose audio is being encoded
    mms_id = audio_template(client, httpserver)
    # Then sending it is refused with E626 until the encoding ends
    got = answer(client.post(send_xml(client, mms_id)))
    assert (got["error-code"], got["to"]) == ("E626", US)
    # And once its encoding failed, the mms-id is unusable (E241)
    template = client.ctx.templates.get(mms_id)
    assert template is not None
    items = encoding_input(template, client.account)["items"]
    finalize(
        client.ctx,
        {
            "mms_id": mms_id,
            "account_id": template.account_id,
            "results": [{"ok": False, "item": items[0], "error": "bad"}],
        },
    )
    assert answer(client.post(send_xml(client, mms_id)))["error-code"] == "E241"


def send_mms_xml(client: Client, slide: str, fields: str = "") -> str:
    return (
        f"<request><action>sendMMS</action><api-key>{client.api_key}</api-key>"
        f"<to>{US}</to><from>28444</from><service-id>12345</service-id><name>once</name>"
        f"<fallback-sms-text>see</fallback-sms-text><message-subject>s</message-subject>"
        f"{fields}<slide>{slide}</slide></request>"
    )


def test_send_mms_saves_and_queues_in_one_call(client: Client, stack: Stack) -> None:
    got = answer(client.post(send_mms_xml(client, "<message-text>hello</message-text>")))
    assert got["status"] == "Success", got
    assert list(got) == ["status", "to", "mms-id", "tracking-id", "status-details"]
    assert queued(stack) == [parse_tracking_id(got["tracking-id"])]
    # No N003 for a sendMMS template: its send is what the customer follows
    assert postback_events(stack) == []


def test_send_mms_waits_for_encoding_then_queues_or_fails_with_e012(
    client: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given two sendMMS with audio, both waiting for their encoding
    httpserver.expect_request("/a.wav").respond_with_data(tone_wav(), content_type="audio/wav")
    slide = f"<audio><url>{httpserver.url_for('/a.wav')}</url></audio>"
    first, second = (answer(client.post(send_mms_xml(client, slide))) for _ in range(2))
    ids = [parse_tracking_id(g["tracking-id"]) or 0 for g in (first, second)]
    sends = [client.ctx.sends.get(send_id) for send_id in ids]
    assert [s.status for s in sends if s] == [SendStatus.WAITING, SendStatus.WAITING]
    assert queued(stack) == []
    # When the first encodes and the second fails
    for got, ok in ((first, True), (second, False)):
        template = client.ctx.templates.get(int(got["mms-id"]))
        assert template is not None
        assert template.status is TemplateStatus.ENCODING
        item = encoding_input(template, client.account)["items"][0]
        result = (
            {
                "ok": True,
                "item": item,
                "duration_seconds": 1.0,
                "renditions": [
                    {
                        "key": "k",
                        "content_type": "audio/mpeg",
                        "profile": "mp3",
                        "codec": "mp3",
                        "bytes": 10,
                    }
                ],
            }
            if ok
            else {"ok": False, "item": item, "error": "bad"}
        )
        finalize(
            client.ctx,
            {"mms_id": template.mms_id, "account_id": template.account_id, "results": [result]},
        )
    # Then the first is queued, the second failed with E012 naming its tracking-id
    assert queued(stack) == [parse_tracking_id(first["tracking-id"])]
    [event] = postback_events(stack)
    assert event["detail"]["code"] == "E012"
    assert event["detail"]["fields"]["tracking-id"] == second["tracking-id"]


def test_send_mms_with_bad_addressing_stores_nothing(client: Client, stack: Stack) -> None:
    got = answer(
        client.post(
            send_mms_xml(client, "<message-text>x</message-text>").replace(
                f"<to>{US}</to>", "<to>123</to>"
            )
        )
    )
    assert (got["error-code"], got["to"]) == ("E110", "123")
    total, _ = client.ctx.templates.page(client.account.account_id, None, 1, 10)
    assert total == 0
