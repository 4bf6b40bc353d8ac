"""The Skycore 1.3 examples through the front door and the postback function
(docs/legacy-1.3.md): each example request gets the answer 1.3 documents, and what a
legacy account is told carries what the 1.3 grammars require (schemas/legacy/)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from local.stack import Stack
from mmsapi.models import Dialect, SendStatus
from mmsapi.services.deliver import deliver
from mmsapi.services.postback import build_postback, handle_event
from mmsapi.services.report import mm7_report, sms_report
from mmsapi.settings import get_settings
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.conftest import DELIVERED_TO, REFUSED, REJECTED, Carrier
from tests.integration.helpers import answer, postback_events
from tests.media import photo_jpeg, tone_wav

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "skycore13"
SCHEMAS = ROOT / "schemas" / "legacy"
VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Fish Tank\r\nEND:VCARD\r\n"


@cache
def schema(name: str) -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMAS / f"{name}.rng")))


def tree(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(remove_blank_text=True))


def assert_valid(name: str, data: bytes) -> etree._Element:
    root = tree(data)
    assert schema(name).validate(root), (schema(name).error_log, data)
    return root


def tags(data: bytes) -> list[str]:
    return [e.tag for e in tree(data)]


def serve_media(httpserver: HTTPServer) -> str:
    """The example's www.yoursite.com paths, served locally; the base URL to use."""
    httpserver.expect_request("/images/1.jpg").respond_with_data(
        photo_jpeg(), content_type="image/jpeg"
    )
    httpserver.expect_request("/audio/1.mp3").respond_with_data(
        tone_wav(), content_type="audio/wav"
    )
    httpserver.expect_request("/vcard/2.vcf").respond_with_data(VCARD, content_type="text/vcard")
    return httpserver.url_for("/").rstrip("/")


def example(name: str, base: str = "", **replace: str) -> str:
    """A 1.3 example request as printed, its media on `base` and some values replaced."""
    text = (FIXTURES / "requests" / name).read_text()
    if base:
        text = text.replace("http://www.yoursite.com", base)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def with_fallback(xml: str) -> str:
    """The example with the FALLBACKSMSTEXT its 1.3 prototype lists."""
    return xml.replace("</REQUEST>", "<FALLBACKSMSTEXT>See it here:</FALLBACKSMSTEXT></REQUEST>")


def saved_template(client: Client, base: str) -> str:
    """The template of 1.3's saveMMS example, without its audio: usable at once (audio
    keeps a template encoding, E626, until its encoding ends)."""
    audio = "<AUDIO><URL>http://www.yoursite.com/audio/1.mp3</URL></AUDIO>"
    got = client.post(
        example("saveMMS.xml", **{audio: ""}).replace("http://www.yoursite.com", base)
    )
    assert answer(got)["STATUS"] == "Success", got
    return answer(got)["MMSID"]


# ---- requests and answers -----------------------------------------------------------


def test_save_mms_13_example_is_answered_as_13_documents(
    client: Client, httpserver: HTTPServer
) -> None:
    # Given the 1.3 saveMMS example (two slides, image + audio, text + vCard)
    xml = example("saveMMS.xml", serve_media(httpserver))
    # When it is posted
    got = client.post(xml)
    # Then the answer matches 1.3's success example, element for element
    assert_valid("answer", got)
    assert tags(got) == tags((FIXTURES / "responses/saveMMS-success.xml").read_bytes())
    template = client.ctx.templates.get(int(answer(got)["MMSID"]))
    assert template is not None
    assert [s.duration for s in template.slides] == [5, 5]


def test_both_slide_layouts_save_the_same_template(client: Client, httpserver: HTTPServer) -> None:
    # Given the 1.3 saveMMS example in the older CONTENT/SEQUENCE layout, and the same
    # slide in the flat layout
    base = serve_media(httpserver)
    old = client.post(example("saveMMS-content-sequence.xml", base))
    flat = client.post(
        "<REQUEST><ACTION>saveMMS</ACTION><API_KEY>qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ</API_KEY>"
        f"<SUBJECT>The subject </SUBJECT><NAME>fishtank</NAME><SLIDE><IMAGE><URL>{base}"
        f"/images/1.jpg</URL></IMAGE><AUDIO><URL>{base}/audio/1.mp3</URL></AUDIO>"
        "<TEXT>Here is some text tralalala....</TEXT><DURATION>5</DURATION></SLIDE></REQUEST>"
    )
    # Then both are saved, and their templates are alike
    assert_valid("answer", old)
    assert tags(old) == tags((FIXTURES / "responses/saveMMS-success.xml").read_bytes())
    templates = [client.ctx.templates.get(int(answer(x)["MMSID"])) for x in (old, flat)]
    shapes = [
        (t.name, t.subject, [(s.duration, [m.kind for m in s.media]) for s in t.slides])
        for t in templates
        if t is not None
    ]
    assert len(shapes) == 2
    assert shapes[0] == shapes[1]
    assert shapes[0][2] == [(5, ["image", "audio"])]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("<CONTENT><SEQUENCE><SLIDE><TEXT>t</TEXT></SLIDE></SEQUENCE></CONTENT>", "E311"),
        ("<CONTENT><NAME>n</NAME><SEQUENCE></SEQUENCE></CONTENT>", "E312"),
        ("<CONTENT><NAME>n</NAME><SEQUENCE><SLIDE duration='5'/></SEQUENCE></CONTENT>", "E313"),
        (
            "<CONTENT><NAME>n</NAME><SEQUENCE>"
            + "<SLIDE><TEXT>t</TEXT></SLIDE>" * 9
            + "</SEQUENCE></CONTENT>",
            "E225",
        ),
        (
            "<CONTENT><NAME>n</NAME><SEQUENCE><SLIDE duration='abc'><TEXT>t</TEXT></SLIDE>"
            "</SEQUENCE></CONTENT>",
            "E230",
        ),
        (
            "<CONTENT><NAME>n</NAME><SEQUENCE><SLIDE duration='\u0665'><TEXT>t</TEXT></SLIDE>"
            "</SEQUENCE></CONTENT>",
            "E230",
        ),
        (
            "<CONTENT><NAME>n</NAME><SEQUENCE><SLIDE duration='31'><TEXT>t</TEXT></SLIDE>"
            "</SEQUENCE></CONTENT>",
            "E230",
        ),
    ],
    ids=["no-name", "no-slide", "empty-slide", "too-many", "not-a-number", "not-ascii", "31s"],
)
def test_the_old_layout_gets_the_documented_codes(client: Client, body: str, code: str) -> None:
    got = client.post(
        f"<REQUEST><ACTION>saveMMS</ACTION><API_KEY>{client.api_key}</API_KEY>"
        f"<SUBJECT>s</SUBJECT>{body}</REQUEST>"
    )
    assert_valid("answer", got)
    assert (answer(got)["STATUS"], answer(got)["ERRORCODE"]) == ("Failure", code), got


def test_the_body_size_cap_holds_for_the_old_layout(client: Client) -> None:
    slides = "<SLIDE duration='5'><TEXT>t</TEXT></SLIDE>" * (
        get_settings().max_request_bytes // 40 + 1
    )
    got = client.post(
        f"<REQUEST><ACTION>saveMMS</ACTION><API_KEY>{client.api_key}</API_KEY><CONTENT>"
        f"<NAME>n</NAME><SEQUENCE>{slides}</SEQUENCE></CONTENT></REQUEST>"
    )
    assert answer(got)["ERRORCODE"] == "E100"


@pytest.mark.parametrize("name", ["sendMMS.xml", "sendMMS-content-sequence.xml"])
def test_send_mms_13_examples_are_answered_as_13_documents(
    client: Client, httpserver: HTTPServer, name: str
) -> None:
    # Given a 1.3 sendMMS example, to a number and from a shortcode of this deployment
    xml = example(
        name,
        serve_media(httpserver),
        ea7966f90de2bf520e3f0042053e6ec3=client.api_key,
        **{"15551234888": DELIVERED_TO, "60856": "28444"},
    )
    # When it is posted as written, Then it needs a fallback text (E622), answered as
    # 1.3's failure example is
    refused = client.post(xml)
    assert_valid("answer", refused)
    assert tags(refused) == tags((FIXTURES / "responses/sendMMS-failure.xml").read_bytes())
    assert answer(refused)["ERRORCODE"] == "E622"
    # When it carries the FALLBACKSMSTEXT of 1.3's prototype, Then it is accepted, with
    # 1.3's success elements in 1.3's order
    got = client.post(with_fallback(xml))
    assert_valid("answer", got)
    fields = answer(got)
    assert fields["STATUS"] == "Success", got
    success = (FIXTURES / "responses" / "sendMMS-success.xml").read_bytes()
    assert tags(got) == tags(success)
    assert fields["TO"] == DELIVERED_TO
    assert parse_tracking_id(fields["TRACKINGID"])


def test_send_saved_mms_13_example_is_answered_as_13_documents(
    client: Client, httpserver: HTTPServer
) -> None:
    # Given a template saved from the 1.3 saveMMS example, and the 1.3 sendSavedMMS
    # example (custom text and subject, merge data, Device Discovery) naming it
    mms_id = saved_template(client, serve_media(httpserver))
    xml = example(
        "sendSavedMMS.xml",
        **{"<MMSID>35674": f"<MMSID>{mms_id}", "16501234123": DELIVERED_TO, "60856": "28444"},
    )
    # When it is posted as written, Then it needs a fallback text (E622)
    refused = client.post(xml)
    assert_valid("answer", refused)
    assert tags(refused) == tags((FIXTURES / "responses/sendSavedMMS-failure.xml").read_bytes())
    assert answer(refused)["ERRORCODE"] == "E622"
    # When it carries a FALLBACKSMSTEXT, Then the answer has 1.3's success elements
    got = client.post(with_fallback(xml))
    assert_valid("answer", got)
    assert sorted(tags(got)) == sorted(
        tags((FIXTURES / "responses/sendSavedMMS-success.xml").read_bytes())
    )
    assert answer(got)["MMSID"] == mms_id
    send = client.ctx.sends.get(parse_tracking_id(answer(got)["TRACKINGID"]) or 0)
    assert send is not None
    assert send.ddm is not None
    assert send.ddm.timeout_minutes == 10
    assert [(c.slide, c.value) for c in send.custom_texts] == [(1, "My Custom text in first slide")]
    assert send.custom_subject == "My Custom Subject"
    assert send.data["first_name"] == "John"


def test_the_13_merge_tag_pair(client: Client, httpserver: HTTPServer) -> None:
    # Given the merge-tag example of 1.3's saveMMS page, then its sendsavedMMS request
    base = serve_media(httpserver)
    httpserver.expect_request(
        "/caribbean/bahamas/images/s/bahamas-boat-rental.jpg"
    ).respond_with_data(photo_jpeg(), content_type="image/jpeg")
    stars = "*********************************************"
    saved = client.post(
        example("saveMMS-merge-tags.xml", **{stars: client.api_key}).replace(
            "http://www.destination360.com", base
        )
    )
    assert_valid("answer", saved)
    mms_id = answer(saved)["MMSID"]
    sent = client.post(
        with_fallback(
            example(
                "sendSavedMMS-merge-tags.xml",
                **{
                    stars: client.api_key,
                    "43615": mms_id,
                    "66666": "28444",
                    "16502426058": DELIVERED_TO,
                },
            )
        )
    )
    # Then the lower-case action is served and the send keeps the merge data
    assert_valid("answer", sent)
    assert answer(sent)["STATUS"] == "Success", sent
    send = client.ctx.sends.get(parse_tracking_id(answer(sent)["TRACKINGID"]) or 0)
    assert send is not None
    assert send.data == {"firstname": "Bill", "gender": "Male"}


def test_delete_and_list_answer_in_the_legacy_schema(
    client: Client, httpserver: HTTPServer
) -> None:
    mms_id = saved_template(client, serve_media(httpserver))
    listed = client.post(
        f"<REQUEST><ACTION>getMMSTemplates</ACTION><API_KEY>{client.api_key}</API_KEY>"
        "<PAGENUMBER>1</PAGENUMBER><ITEMSPERPAGE>5</ITEMSPERPAGE></REQUEST>"
    )
    page = assert_valid("answer", listed)
    assert page.findtext("MMSTEMPLATE/MMSID") == mms_id
    assert page.findtext("ITEMSPERPAGE") == "5"  # the names it answers with are read too
    bad = client.post(
        f"<REQUEST><ACTION>getMMSTemplates</ACTION><API_KEY>{client.api_key}</API_KEY>"
        "<PAGENUMBER>x</PAGENUMBER></REQUEST>"
    )
    assert answer(bad)["ERRORCODE"] == "E212"
    deleted = client.post(
        f"<REQUEST><ACTION>deleteMMSID</ACTION><API_KEY>{client.api_key}</API_KEY>"
        f"<MMSID>{mms_id}</MMSID></REQUEST>"
    )
    assert [e.tag for e in assert_valid("answer", deleted)] == ["STATUS", "MMSID"]
    again = client.post(
        f"<REQUEST><ACTION>deleteMMSID</ACTION><API_KEY>{client.api_key}</API_KEY>"
        f"<MMSID>{mms_id}</MMSID></REQUEST>"
    )
    assert [e.tag for e in assert_valid("answer", again)] == ["STATUS", "ERRORCODE", "ERRORINFO"]


# ---- postbacks ------------------------------------------------------------------------


def legacy_postbacks(stack: Stack) -> list[bytes]:
    """Every postback made since the last call, as a legacy account receives it."""
    return [build_postback(e["detail"], Dialect.LEGACY) for e in postback_events(stack)]


def like_13_example(ours: bytes, name: str) -> None:
    """Ours matches the legacy schema and carries every element of the 1.3 example."""
    assert_valid("postback", ours)
    expected = set(tags((FIXTURES / "postbacks" / name).read_bytes()))
    assert expected <= set(tags(ours)), (expected - set(tags(ours)), ours)


def image_template(client: Client, httpserver: HTTPServer, extra: str = "") -> str:
    base = serve_media(httpserver)
    got = client.post(
        f"<REQUEST><ACTION>saveMMS</ACTION><API_KEY>{client.api_key}</API_KEY><NAME>n</NAME>"
        f"<SUBJECT>s</SUBJECT>{extra}<SLIDE><IMAGE><URL>{base}/images/1.jpg</URL></IMAGE>"
        "<TEXT>hi</TEXT></SLIDE><CLIENT_REFERENCE>order-17</CLIENT_REFERENCE></REQUEST>"
    )
    assert answer(got)["STATUS"] == "Success", got
    return answer(got)["MMSID"]


def legacy_send(client: Client, mms_id: str, to: str) -> int:
    got = client.post(
        f"<REQUEST><ACTION>sendSavedMMS</ACTION><API_KEY>{client.api_key}</API_KEY>"
        f"<MMSID>{mms_id}</MMSID><TO>{to}</TO><FROM>28444</FROM><SPID>383</SPID>"
        "<FALLBACKSMSTEXT>See:</FALLBACKSMSTEXT></REQUEST>"
    )
    assert answer(got)["STATUS"] == "Success", got
    return parse_tracking_id(answer(got)["TRACKINGID"]) or 0


def test_saved_and_delivered_mms_postbacks_carry_the_13_elements(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    # Given a template saved in the legacy dialect: N003 as 1.3's example
    mms_id = image_template(client, httpserver)
    [n003] = legacy_postbacks(stack)
    like_13_example(n003, "N003.xml")
    assert tags(n003) == ["ORIGIN", "CODE", "MMSID", "CLIENT_REFERENCE"]
    # When it is sent and delivered as MMS
    send_id = legacy_send(client, mms_id, DELIVERED_TO)
    assert deliver(client.ctx, send_id) == "sent as MMS"
    [n101] = legacy_postbacks(stack)
    carrier.wait_reports(1)
    _, body, content_type = carrier.reports[0]
    mm7_report(client.ctx, body, content_type)
    [n102] = legacy_postbacks(stack)
    # Then N101 and N102 carry every element of 1.3's binary examples
    like_13_example(n101, "N101-binary.xml")
    like_13_example(n102, "N102-binary.xml")
    # And the carrier is the request's SPID, the MMSC's message id AGGREGATORID
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.DELIVERED
    fields = {e.tag: e.text or "" for e in tree(n102)}
    assert fields["AGGREGATORID"] == stored.carrier_message_id != ""
    assert (fields["SENTAS"], fields["HANDSET"]) == ("MMS", "iPhone")
    assert fields["SPID"] == "383"  # the legacy request's SPID, echoed (docs/legacy-1.3.md)
    assert fields["TRACKINGID"] == {e.tag: e.text for e in tree(n101)}["TRACKINGID"]
    # And the template's CLIENT_REFERENCE is not echoed for a send that gave none
    assert "CLIENT_REFERENCE" not in tags(n101) + tags(n102)


def test_fallback_sms_postbacks_carry_the_13_xhtml_elements(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    # Given a send to a number the carrier refuses MMS for
    send_id = legacy_send(client, image_template(client, httpserver), REFUSED)
    legacy_postbacks(stack)
    # When it goes out as fallback SMS and the SMS is delivered
    assert deliver(client.ctx, send_id) == "sent as SMS"
    [n101] = legacy_postbacks(stack)
    [sms] = carrier.sms.sent
    carrier.wait_reports(1)
    assert sms_report(client.ctx, sms["message_id"], delivered=True)
    [n202] = legacy_postbacks(stack)
    # Then N101 and N202 carry every element of 1.3's xHTML examples
    like_13_example(n101, "N101-xhtml.xml")
    like_13_example(n202, "N102-xhtml.xml")
    fields = {e.tag: e.text or "" for e in tree(n202)}
    assert (fields["CODE"], fields["SENTAS"]) == ("N202", "SMS")
    assert fields["AGGREGATORID"] == sms["message_id"]


def test_failed_postbacks_carry_the_13_elements(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    # Given a send the carrier rejects, and one that cannot fall back to SMS
    rejected = legacy_send(client, image_template(client, httpserver), REJECTED)
    no_fallback = image_template(client, httpserver, "<DISABLEFALLBACKSMS>yes</DISABLEFALLBACKSMS>")
    refused = legacy_send(client, no_fallback, REFUSED)
    legacy_postbacks(stack)
    # When they are delivered
    deliver(client.ctx, rejected)
    carrier.wait_reports(1)
    _, body, content_type = carrier.reports[0]
    mm7_report(client.ctx, body, content_type)
    assert deliver(client.ctx, refused) == "failed"
    by_code = {tree(p).findtext("CODE"): p for p in legacy_postbacks(stack)}
    # Then E102 carries 1.3's example elements, STATUSDETAILS the carrier's reason, and
    # E101 all of 1.3's E101 grammar
    like_13_example(by_code["E102"], "E102.xml")
    assert tree(by_code["E102"]).findtext("STATUSDETAILS")
    like_13_example(by_code["E101"], "E101.xml")


def test_a_legacy_account_receives_the_13_shape_on_the_wire(
    client: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given a legacy account whose postback URL records what it receives
    received: list[bytes] = []

    def record(request: Request) -> Response:
        received.append(request.get_data())
        return Response("ok")

    httpserver.expect_request("/postback").respond_with_handler(record)
    client.account.postback_dialect = Dialect.LEGACY
    client.account.postback_url = httpserver.url_for("/postback")
    client.ctx.accounts.put(client.account)
    # When a template is saved and its postback event is handled
    mms_id = image_template(client, httpserver)
    [event] = postback_events(stack)
    handle_event(_with_id(event), client.ctx.accounts)
    # Then the body POSTed is 1.3's N003
    [body] = received
    assert_valid("postback", body)
    assert tree(body).findtext("MMSID") == mms_id


def _with_id(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "detail": {**event["detail"], "postback_id": event["postback_id"]}}
