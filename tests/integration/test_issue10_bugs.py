"""The five bugs of issue 10 against the documents, each pinned by a test that failed
before its fix: merge tags in the fallback SMS, the legacy listing's paging names, the
send's own client-reference, empty optional fields, and the sendMMS answer's order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from local.stack import Stack
from mmsapi.services.deliver import deliver
from mmsapi.text import MAX_FALLBACK_CHARS
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.conftest import DELIVERED_TO, REFUSED, Carrier
from tests.integration.helpers import answer, postback_events

US = "14044790000"


def save(client: Client, extra: str = "", name: str = "n") -> int:
    got = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key>"
            f"<name>{name}</name><message-subject>Hi {{$firstname|there}}</message-subject>"
            f"{extra}<slide><message-text>one</message-text></slide></request>"
        )
    )
    assert got["status"] == "Success", got
    return int(got["mms-id"])


def send_saved(client: Client, mms_id: int, to: str = US, extra: str = "") -> dict[str, str]:
    return answer(
        client.post(
            f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
            f"<mms-id>{mms_id}</mms-id><to>{to}</to><from>28444</from>"
            f"<service-id>12345</service-id>{extra}</request>"
        )
    )


def send_id_of(got: dict[str, str]) -> int:
    assert got["status"] == "Success", got
    return parse_tracking_id(got["tracking-id"]) or 0


# ---- 1. merge tags in the fallback SMS ------------------------------------------------


def test_fallback_sms_text_has_its_merge_tags_filled(
    client: Client, stack: Stack, carrier: Carrier
) -> None:
    # Given a template whose fallback text holds merge tags, sent with and without data
    mms_id = save(
        client,
        "<fallback-sms-text>Hi {$firstname|there}, code {$PIN}</fallback-sms-text>"
        "<disable-fallback-sms-link>yes</disable-fallback-sms-link>",
    )
    with_data = send_id_of(
        send_saved(client, mms_id, REFUSED, "<data><FirstName>Bill</FirstName></data>")
    )
    without = send_id_of(send_saved(client, mms_id, REFUSED))
    # When the carrier refuses MMS for the number and both go as SMS
    assert deliver(client.ctx, with_data) == "sent as SMS"
    assert deliver(client.ctx, without) == "sent as SMS"
    # Then the handset reads the filled text: the value, else the default, else nothing
    assert [sms["text"] for sms in carrier.sms.sent] == ["Hi Bill, code ", "Hi there, code "]


def test_a_fallback_text_over_its_limit_once_filled_is_refused(client: Client) -> None:
    # Given a fallback text of the most characters, holding one merge tag
    text = "x" * (MAX_FALLBACK_CHARS - len("{$a}")) + "{$a}"
    mms_id = save(client)
    # When the tag's value would make it longer than 1,400 characters, Then E100
    over = send_saved(
        client,
        mms_id,
        extra=f"<fallback-sms-text>{text}</fallback-sms-text><data><a>yyyyy</a></data>",
    )
    assert over["error-code"] == "E100", over
    # And a value that keeps it within the limit is accepted
    fits = send_saved(
        client,
        mms_id,
        extra=f"<fallback-sms-text>{text}</fallback-sms-text><data><a>yyyy</a></data>",
    )
    assert fits["status"] == "Success", fits


# ---- 2. legacy getMMSTemplates reads PAGENUMBER, ITEMSPERPAGE, STARTDATE --------------


def listing(client: Client, legacy: bool, fields: dict[str, str]) -> etree._Element:
    if legacy:
        body = "".join(
            f"<{k.replace('-', '').upper()}>{v}</{k.replace('-', '').upper()}>"
            for k, v in fields.items()
        )
        xml = (
            f"<REQUEST><ACTION>getMMSTemplates</ACTION><API_KEY>{client.api_key}</API_KEY>"
            f"{body}</REQUEST>"
        )
    else:
        body = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
        xml = (
            f"<request><action>getMMSTemplates</action><api-key>{client.api_key}</api-key>"
            f"{body}</request>"
        )
    return etree.fromstring(client.post(xml))


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
def test_listing_pages_items_and_start_date_in_both_dialects(client: Client, legacy: bool) -> None:
    def name(field: str) -> str:
        return field.replace("-", "").upper() if legacy else field

    # Given three templates
    ids = [save(client, name=f"t{i}") for i in range(3)]
    # When page 2 of two items each is asked
    page = listing(client, legacy, {"page-number": "2", "items-per-page": "2"})
    # Then the oldest comes back, and the answer names the page and its size
    assert page.findtext(name("page-number")) == "2"
    assert page.findtext(name("items-per-page")) == "2"
    assert page.findtext(name("total-results")) == "3"
    rows = page.findall(f"{name('mms-template')}/{name('mms-id')}")
    assert [int(r.text or 0) for r in rows] == [ids[0]]
    # When a start date after every template is given, Then nothing is listed, and the
    # date is answered as given
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    later = listing(client, legacy, {"start-date": future})
    assert later.findtext(name("total-results")) == "0"
    assert later.findtext(name("start-date")) == future
    # And the date it answers with is read back the same
    again = listing(client, legacy, {"start-date": later.findtext(name("start-date")) or ""})
    assert again.findtext(name("total-results")) == "0"


# ---- 3. a send's postbacks carry its own client-reference only ------------------------


def test_a_send_without_client_reference_does_not_echo_the_templates(
    client: Client, stack: Stack, carrier: Carrier
) -> None:
    # Given a template saved with a client-reference: its N003 carries it
    mms_id = save(
        client,
        "<client-reference>camp</client-reference><fallback-sms-text>see</fallback-sms-text>",
    )
    [n003] = postback_events(stack)
    assert n003["detail"]["fields"]["client-reference"] == "camp"
    # When it is sent once without a client-reference and once with its own
    plain = send_id_of(send_saved(client, mms_id, DELIVERED_TO))
    own = send_id_of(
        send_saved(client, mms_id, DELIVERED_TO, "<client-reference>order-9</client-reference>")
    )
    deliver(client.ctx, plain)
    deliver(client.ctx, own)
    # Then each N101 carries the send's own client-reference, or none
    n101 = {
        e["detail"]["fields"]["tracking-id"]: e["detail"]["fields"] for e in postback_events(stack)
    }
    references = {parse_tracking_id(t): f.get("client-reference") for t, f in n101.items()}
    assert references == {plain: None, own: "order-9"}


# ---- 4. empty optional fields are "not given" -----------------------------------------


@pytest.mark.parametrize(
    "empty",
    [
        "<operator-id/>",
        "<operator-id></operator-id>",
        "<client-reference/>",
        "<custom-subject/>",
        "<ddm-message-subject/>",
        "<ddm-message-timeout/>",
        "<ddm-force/>",
    ],
)
def test_an_empty_optional_field_is_not_given(client: Client, empty: str) -> None:
    # Given a template with a subject
    mms_id = save(client, "<fallback-sms-text>see</fallback-sms-text>")
    # When a send carries the optional field empty
    got = send_saved(client, mms_id, extra=empty)
    # Then it is accepted as if the field were left out
    send = client.ctx.sends.get(send_id_of(got))
    assert send is not None
    assert (send.operator_id, send.client_reference, send.custom_subject, send.ddm) == (
        "",
        "",
        None,
        None,
    )


@pytest.mark.parametrize("empty", ["<OPERATORID/>", "<SPID/>", "<SPID></SPID>"])
def test_an_empty_legacy_operator_is_not_given(client: Client, empty: str) -> None:
    mms_id = save(client, "<fallback-sms-text>see</fallback-sms-text>")
    got = answer(
        client.post(
            f"<REQUEST><ACTION>sendSavedMMS</ACTION><API_KEY>{client.api_key}</API_KEY>"
            f"<MMSID>{mms_id}</MMSID><TO>{US}</TO><FROM>28444</FROM>{empty}</REQUEST>"
        )
    )
    assert got["STATUS"] == "Success", got


def test_an_empty_required_field_is_still_refused(client: Client) -> None:
    # service-id is required in the current dialect (docs/actions.md): empty is E627
    mms_id = save(client, "<fallback-sms-text>see</fallback-sms-text>")
    got = answer(
        client.post(
            f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
            f"<mms-id>{mms_id}</mms-id><to>{US}</to><from>28444</from><service-id/></request>"
        )
    )
    assert got["error-code"] == "E627"


# ---- 5. the sendMMS answer in the documents' order ------------------------------------


def test_send_mms_answers_status_to_mms_id_tracking_id_status_details(client: Client) -> None:
    current = client.post(
        f"<request><action>sendMMS</action><api-key>{client.api_key}</api-key><to>{US}</to>"
        "<from>28444</from><service-id>12345</service-id><name>n</name>"
        "<fallback-sms-text>see</fallback-sms-text><slide><message-text>hi</message-text></slide>"
        "</request>"
    )
    legacy = client.post(
        f"<REQUEST><ACTION>sendMMS</ACTION><API_KEY>{client.api_key}</API_KEY><TO>{US}</TO>"
        "<FROM>28444</FROM><NAME>n</NAME><FALLBACKSMSTEXT>see</FALLBACKSMSTEXT>"
        "<SLIDE><TEXT>hi</TEXT></SLIDE></REQUEST>"
    )
    assert [e.tag for e in etree.fromstring(current)] == [
        "status",
        "to",
        "mms-id",
        "tracking-id",
        "status-details",
    ]
    assert [e.tag for e in etree.fromstring(legacy)] == [
        "STATUS",
        "TO",
        "MMSID",
        "TRACKINGID",
        "STATUSDETAILS",
    ]


def test_send_saved_mms_keeps_its_documented_order(client: Client) -> None:
    got = send_saved(client, save(client, "<fallback-sms-text>see</fallback-sms-text>"))
    assert list(got) == ["status", "mms-id", "tracking-id", "to", "from", "status-details"]
