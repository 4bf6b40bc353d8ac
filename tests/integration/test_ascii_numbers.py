"""Numbers are ASCII or refused (issue 8, item 2): every field that takes a number
answers its own documented code for '²', other scripts' digits and huge values, never
E503; recipients are normalised before any check; unauthenticated links never 500."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local.stack import Stack
from mmsapi.store import aws
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client, load_event
from tests.integration.helpers import answer
from tests.lambda_context import FakeLambdaContext, load_handler_module

US = "14044790000"
# Each would pass str.isdigit(); int() reads some and raises on the others.
NOT_ASCII = {
    "superscript-two": "²",
    "arabic-indic-three": "٣",
    "full-width-three": "３",
    "devanagari-five": "५",
    "five-thousand-nines": "9" * 5000,
}
HUGE = {"beyond-int64": str(2**64), "five-thousand-nines": "9" * 5000}
BAD = pytest.mark.parametrize(
    "number", [*NOT_ASCII.values(), *HUGE.values()], ids=[*NOT_ASCII, *HUGE]
)


def request(client: Client, action: str, fields: str) -> dict[str, str]:
    return answer(
        client.post(
            f"<request><action>{action}</action><api-key>{client.api_key}</api-key>"
            f"{fields}</request>"
        )
    )


def saved(client: Client) -> int:
    got = request(
        client,
        "saveMMS",
        "<name>n</name><message-subject>s</message-subject><fallback-sms-text>f</fallback-sms-text>"
        "<slide><message-text>one</message-text></slide>"
        "<slide><message-text>two</message-text></slide>",
    )
    assert got["status"] == "Success", got
    return int(got["mms-id"])


def send_fields(mms_id: int | str, **fields: str) -> str:
    values = {
        "to": US,
        "from": "28444",
        "service-id": "12345",
        "fallback-sms-text": "see",
        "mms-id": str(mms_id),
    }
    values.update({k.replace("_", "-"): v for k, v in fields.items()})
    return "".join(f"<{k}>{v}</{k}>" for k, v in values.items())


def failure(got: dict[str, str]) -> str:
    assert got["status"] == "Failure", got
    return got["error-code"]


# ---- every field that takes a number ---------------------------------------------


@BAD
def test_slide_duration_is_e230(client: Client, number: str) -> None:
    got = request(
        client,
        "saveMMS",
        f"<name>n</name><fallback-sms-text>f</fallback-sms-text><slide><message-text>t</message-text>"
        f"<duration>{number}</duration></slide>",
    )
    assert failure(got) == "E230"


@BAD
def test_mms_id_to_delete_is_e241(client: Client, number: str) -> None:
    assert failure(request(client, "deleteMMSID", f"<mms-id>{number}</mms-id>")) == "E241"


@BAD
def test_mms_id_to_send_is_e241(client: Client, number: str) -> None:
    assert failure(request(client, "sendSavedMMS", send_fields(number))) == "E241"


@BAD
def test_page_number_is_e212(client: Client, number: str) -> None:
    got = request(client, "getMMSTemplates", f"<page-number>{number}</page-number>")
    assert failure(got) == "E212"


@BAD
def test_items_per_page_is_e213(client: Client, number: str) -> None:
    got = request(client, "getMMSTemplates", f"<items-per-page>{number}</items-per-page>")
    assert failure(got) == "E213"


@BAD
def test_start_date_is_e214(client: Client, number: str) -> None:
    got = request(client, "getMMSTemplates", f"<start-date>{number}</start-date>")
    assert failure(got) == "E214"


def test_start_date_in_other_digits_is_e214(client: Client) -> None:
    # strptime's %Y reads any script's digits: ٢٠٢٤-٠١-٠١ would be 2024-01-01.
    arabic = "2024-01-01".translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    got = request(client, "getMMSTemplates", f"<start-date>{arabic}</start-date>")
    assert failure(got) == "E214"


@BAD
def test_custom_text_slide_is_e100(client: Client, number: str) -> None:
    custom = f"<custom-text><value>x</value><slide>{number}</slide></custom-text>"
    got = request(client, "sendSavedMMS", send_fields(saved(client)) + custom)
    assert failure(got) == "E100"
    assert len(got["error-info"]) < 200  # the answer does not echo 5,000 digits


@BAD
def test_ddm_timeout_is_e100(client: Client, number: str) -> None:
    fields = send_fields(saved(client), ddm_message_text="hi", ddm_message_timeout=number)
    assert failure(request(client, "sendSavedMMS", fields)) == "E100"


@BAD
def test_operator_id_is_e650(client: Client, number: str) -> None:
    fields = send_fields(saved(client), operator_id=number)
    assert failure(request(client, "sendSavedMMS", fields)) == "E650"


def test_ascii_numbers_still_work(client: Client) -> None:
    mms_id = saved(client)
    custom = "<custom-text><value>x</value><slide>02</slide></custom-text>"
    fields = send_fields(f"00{mms_id}", ddm_message_text="hi", ddm_message_timeout="10") + custom
    assert request(client, "sendSavedMMS", fields)["status"] == "Success"
    got = request(
        client, "getMMSTemplates", "<page-number>1</page-number><items-per-page>5</items-per-page>"
    )
    assert got["status"] == "Success"


# ---- recipients ----------------------------------------------------------------------


def in_digits(number: str, zero: str) -> str:
    return number.translate({ord("0") + d: ord(zero) + d for d in range(10)})


@pytest.mark.parametrize(
    "to",
    [
        in_digits(US, "٠"),  # Arabic-Indic
        in_digits(US, "۰"),  # Extended Arabic-Indic
        in_digits(US, "０"),  # full-width
        in_digits(US, "०"),  # Devanagari
        "+" + in_digits(US, "٠"),
        "1404479000²",
        "9" * 5000,
    ],
    ids=[
        "arabic-indic",
        "extended-arabic-indic",
        "full-width",
        "devanagari",
        "plus",
        "sup",
        "huge",
    ],
)
def test_recipient_in_other_digits_is_e110_and_nothing_is_queued(
    client: Client, stack: Stack, to: str
) -> None:
    # Given a blocked number, written in another script's digits
    client.account.blocked_numbers = [US]
    client.ctx.accounts.put(client.account)
    # When it is sent to, Then it is refused as an invalid number: not accepted, not stuck
    got = request(client, "sendSavedMMS", send_fields(saved(client), to=to))
    assert failure(got) == "E110"
    assert queued(stack) == 0


@pytest.mark.parametrize(
    ("blocked", "to"),
    [
        (US, "+1 (404) 479-0000"),
        (US, "001-404-479-0000"),
        ("+1 404 479 0000", US),
        ("+1-404-479-0000", "+14044790000"),
    ],
)
def test_blocked_number_is_e114_however_it_is_written(
    client: Client, blocked: str, to: str
) -> None:
    # Given a blocked number, When it is sent to in another written form
    client.account.blocked_numbers = [blocked]
    client.ctx.accounts.put(client.account)
    got = request(client, "sendSavedMMS", send_fields(saved(client), to=to))
    # Then the check sees the canonical number
    assert failure(got) == "E114"


def test_recipient_is_stored_canonical(client: Client) -> None:
    got = request(client, "sendSavedMMS", send_fields(saved(client), to="+1 (404) 479-0000"))
    assert got["status"] == "Success", got
    send = client.ctx.sends.get(send_id_of(got))
    assert send is not None
    assert send.to == US


def send_id_of(got: dict[str, str]) -> int:
    send_id = parse_tracking_id(got["tracking-id"])
    assert send_id is not None
    return send_id


def queued(stack: Stack) -> int:
    url = stack.physical["SendQueue"]
    got = aws.sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return len(got.get("Messages", []))


# ---- links and carrier reports, without authentication ------------------------------


def view(token: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("view/unknown-link.json"))
    event["pathParameters"] = {"token": token} if token is not None else None
    result: dict[str, Any] = load_handler_module("view").handler(event, FakeLambdaContext())
    return result


@pytest.mark.parametrize(
    "token", ["².x", "٣.x", "３.x", "9" * 5000 + ".x", "1.", "", None, "é", "1.é\ud800"]
)
def test_view_link_with_a_garbled_token_is_404(client: Client, token: str | None) -> None:
    assert view(token)["statusCode"] == 404


def test_view_link_with_a_non_ascii_secret_of_a_real_send_is_404(client: Client) -> None:
    # Given a real send
    send_id = send_id_of(request(client, "sendSavedMMS", send_fields(saved(client))))
    send = client.ctx.sends.get(send_id)
    assert send is not None
    # When its link is asked with the right number and a secret in another script
    # Then it is a wrong link (404), and the right secret still opens it
    assert view(f"{send_id}.é{send.view_secret[1:]}")["statusCode"] == 404
    assert view(f"{send_id}.{send.view_secret}")["statusCode"] == 200


TOKEN = "local-report-token-0123456789"


def report(channel: str, token: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("report/mm7-wrong-token.json"))
    event["pathParameters"] = {"channel": channel, "token": token}
    result: dict[str, Any] = load_handler_module("report").handler(event, FakeLambdaContext())
    return result


@pytest.mark.parametrize("channel", ["mm7", "sms"])
@pytest.mark.parametrize("token", ["é", "²", "\ud800", "", None, TOKEN[:-1] + "é"])
def test_carrier_report_with_a_garbled_token_is_403(
    client: Client, monkeypatch: pytest.MonkeyPatch, channel: str, token: str | None
) -> None:
    from mmsapi.settings import get_settings

    monkeypatch.setenv("MMS_CARRIER_REPORT_TOKEN", TOKEN)
    get_settings.cache_clear()
    assert report(channel, token)["statusCode"] == 403
    assert report(channel, TOKEN)["statusCode"] != 403  # the right token still passes


# ---- repetition ----------------------------------------------------------------------


def test_a_slide_takes_one_custom_text(client: Client) -> None:
    # Given custom texts repeated for one slide (9,000 of them made a send item over
    # DynamoDB's 400 KB: E503)
    mms_id = saved(client)
    twice = "<custom-text><value>a</value><slide>1</slide></custom-text>" * 2
    # When sent, Then the repeat is refused with the custom-text code
    got = request(client, "sendSavedMMS", send_fields(mms_id) + twice)
    assert failure(got) == "E100"
    assert "twice" in got["error-info"]
    # And one text per slide is still fine
    one_each = (
        "<custom-text><value>a</value><slide>1</slide></custom-text>"
        "<custom-text><value>b</value><slide>2</slide></custom-text>"
    )
    assert request(client, "sendSavedMMS", send_fields(mms_id) + one_each)["status"] == "Success"
