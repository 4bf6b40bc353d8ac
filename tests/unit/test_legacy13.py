"""The Skycore 1.3 edition on the wire (docs/legacy-1.3.md): the 1.3 examples against
the legacy schemas, the postbacks this project builds against them, and the older
<CONTENT><SEQUENCE> request layout read as the flat one."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from mmsapi.errors import ApiError
from mmsapi.models import Account, Dialect
from mmsapi.services.postback import POSTBACK_FIELDS, build_postback
from mmsapi.services.send import operator_id_for
from mmsapi.xml import render
from mmsapi.xml.dialect import written
from mmsapi.xml.parse import MAX_ELEMENTS, parse_document
from mmsapi.xml.postbacks13 import REQUIRED
from mmsapi.xml.requests import read_save, read_send

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "skycore13"
SCHEMAS = ROOT / "schemas" / "legacy"
# Examples that leave out an element another 1.3 page requires (schemas/legacy requires
# the union): the sendSavedMMS page's leave out FROM, which the POSTBACKS page's grammar
# requires; the POSTBACKS page's N202 ("N102 (xHTML)") leaves out the FROM_MASK of its
# SMS MT N202 grammar. Example -> (the element, the value it gets).
SHORT_OF = {
    "sendSavedMMS-N101.xml": ("FROM", "60856"),
    "sendSavedMMS-N102.xml": ("FROM", "60856"),
    "N102-xhtml.xml": ("FROM_MASK", None),
}


@cache
def schema(name: str) -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMAS / f"{name}.rng")))


def tree(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(remove_blank_text=True))


def valid(name: str, data: bytes) -> bool:
    return bool(schema(name).validate(tree(data)))


def examples(folder: str) -> list[Path]:
    return sorted((FIXTURES / folder).glob("*.xml"))


# ---- the 1.3 examples against the schemas ------------------------------------------


@pytest.mark.parametrize("path", examples("requests"), ids=lambda p: p.name)
def test_every_13_example_request_matches_the_request_schema(path: Path) -> None:
    assert valid("request", path.read_bytes()), schema("request").error_log


# 1.3's billing failure: a code this deployment never answers (it bills nothing), so
# not in the catalogue nor the schemas' ERRORCODE enumeration.
NEVER_ANSWERED = b"E713"


@pytest.mark.parametrize("path", examples("responses"), ids=lambda p: p.name)
def test_every_13_example_answer_matches_the_answer_schema(path: Path) -> None:
    data = path.read_bytes()
    if NEVER_ANSWERED in data:
        # It is refused for its code alone: with a code of the catalogue it matches
        assert not valid("answer", data)
        data = data.replace(NEVER_ANSWERED, b"E104")
    assert valid("answer", data), schema("answer").error_log


def test_legacy_answers_are_ordered_as_written_and_say_why() -> None:
    # Given 1.3's sendMMS success example, in the order this project writes it
    success = (FIXTURES / "responses" / "sendMMS-success.xml").read_bytes()
    assert valid("answer", success)
    # When two of its elements swap places, Then it no longer matches
    root = tree(success)
    root.insert(1, root[2])  # MMSID before TO
    assert not schema("answer").validate(root)
    # And a failure must say why: an empty ERRORINFO does not match
    failure = render.failure(ApiError("E104"), Dialect.LEGACY)
    assert valid("answer", failure)
    emptied = tree(failure)
    [info] = emptied.findall("ERRORINFO")
    info.text = None
    assert not schema("answer").validate(emptied)


@pytest.mark.parametrize(
    "path", [p for p in examples("postbacks") if p.name not in SHORT_OF], ids=lambda p: p.name
)
def test_every_13_example_postback_matches_the_postback_schema(path: Path) -> None:
    assert valid("postback", path.read_bytes()), schema("postback").error_log


@pytest.mark.parametrize("name", sorted(SHORT_OF))
def test_the_examples_short_of_an_element_fail_for_that_alone(name: str) -> None:
    # Given an example as printed, without an element another 1.3 page requires
    data = (FIXTURES / "postbacks" / name).read_bytes()
    assert not valid("postback", data)
    # When that element is added, Then it matches
    root = tree(data)
    element, value = SHORT_OF[name]
    etree.SubElement(root, element).text = value
    assert schema("postback").validate(root)


def test_a_misspelt_element_fails_the_schemas() -> None:
    answer = render.response([("mms-id", "35674")], Dialect.LEGACY)
    assert valid("answer", answer)
    assert not valid("answer", answer.replace(b"MMSID", b"MMSIDS"))
    postback = (FIXTURES / "postbacks" / "N102-binary.xml").read_bytes()
    assert not valid("postback", postback.replace(b"SPID", b"OPERATORID"))


# ---- the postbacks this project builds --------------------------------------------

# What every send postback's detail holds (services/announce.py send_postback).
SEND = {
    "status": "Message Sent",
    "mms-id": "35674",
    "from": "28444",
    "to": "14044790000",
    "tracking-id": "TU1TXzU5Nzg3OQ==",
    "operator-id": "",
    "timestamp": "2026-11-26T07:27:29+00:00",
}
# Per code: the fields its producer gives beyond SEND (none for the template codes).
GIVEN: dict[str, dict[str, Any]] = {
    "N003": {"mms-id": "35674"},
    "E002": {"mms-id": "35674", "audio-name": "http://x/1.mp3"},
    "E003": {"mms-id": "35674", "video-name": "http://x/1.mp4"},
    "E004": {"mms-id": "35674", "image-name": "http://x/1.jpg"},
    "E012": {**SEND, "status": "Message Failed", "status-details": "deleted"},
    "E013": {
        "mms-id": "35674",
        "video-name": "u",
        "tracking-id": "TU1TXzE=",
        "to": "1",
        "from": "2",
    },
    "N101": {**SEND, "sent-as": "MMS", "aggregator-id": "m-1"},
    "N501": {**SEND, "sent-as": "MMS", "status-details": "Device Discovery Message"},
    "N102": {**SEND, "status": "Message Sent/Delivered", "aggregator-id": "m-1"},
    "N502": {**SEND, "status": "Message Sent/Delivered", "handset": "iPhone"},
    "E101": {**SEND, "status": "Message Failed", "status-details": "why"},
    "E501": {**SEND, "status": "Message Failed", "status-details": "why"},
    "E102": {**SEND, "status": "Message Sent/Rejected", "aggregator-id": "m-1"},
    "E502": {**SEND, "status": "Message Sent/Failed", "aggregator-id": "m-1"},
    "N202": {**SEND, "status": "Message Sent/Delivered", "aggregator-id": "s-1"},
    "E202": {**SEND, "status": "Message Sent/Failed", "aggregator-id": "s-1"},
    "E999": {**SEND, "status": "Message Failed", "status-details": "gave up"},
    "N401": {
        "from": "14082257140",
        "to": "28444",
        "keyword": "yes",
        "tracking-id": "MMS_MO_0123456789abcdef",
        "operator-id": "31002",
        "timestamp": "2026-11-26T07:27:34+00:00",
        "message-subject": "",
        "content": ["https://mms.example.com/v/mo.ZGVtbw.0123456789abcdef.1.s"],
    },
    "N402": {
        "from": "14082257140",
        "to": "28444",
        "keyword": "stop",
        "tracking-id": "SMS_MO_0123456789abcdef",
        "operator-id": "",
        "timestamp": "2026-11-26T07:27:34+00:00",
        "message-text": "STOP",
    },
}


def legacy(code: str, fields: dict[str, Any]) -> bytes:
    return build_postback({"code": code, "fields": fields}, Dialect.LEGACY)


@pytest.mark.parametrize("code", sorted(GIVEN))
def test_every_code_in_the_legacy_dialect_matches_the_legacy_schema(code: str) -> None:
    # Given what the code's producer puts in the detail, with a client reference
    fields = {**GIVEN[code], "client-reference": "order-17"}
    # When built for a legacy account, Then it matches, the client reference last
    body = legacy(code, fields)
    assert valid("postback", body), schema("postback").error_log
    assert [e.tag for e in tree(body)][-1] == "CLIENT_REFERENCE"


@pytest.mark.parametrize("code", sorted(REQUIRED))
def test_each_element_13_requires_is_required_by_the_schema(code: str) -> None:
    # Given a valid legacy postback of the code
    root = tree(legacy(code, GIVEN[code]))
    assert schema("postback").validate(root)
    for name in REQUIRED[code]:
        # When any one element the code requires is taken out, Then it no longer matches
        copy = tree(etree.tostring(root))
        [element] = [e for e in copy if e.tag == written(name, Dialect.LEGACY)]
        copy.remove(element)
        assert not schema("postback").validate(copy), f"{code} without {element.tag}"


def test_unknown_facts_are_empty_elements_and_codes_imply_sent_as() -> None:
    # Given a delivery report that named no handset, of a send with no known carrier
    fields = {k: v for k, v in GIVEN["N102"].items() if k != "aggregator-id"}
    root = tree(legacy("N102", fields))
    # Then 1.3's HANDSET, SPID and AGGREGATORID are there, empty, and SENTAS is MMS
    assert [root.findtext(n) for n in ("HANDSET", "SPID", "AGGREGATORID")] == ["", "", ""]
    assert root.findtext("SENTAS") == "MMS"
    assert tree(legacy("N202", GIVEN["N202"])).findtext("SENTAS") == "SMS"


def test_the_13_names_of_a_delivery_postback_match_the_13_example() -> None:
    # Given 1.3's N102 example and our N102 with the same facts
    example = tree((FIXTURES / "postbacks" / "N102-binary.xml").read_bytes())
    ours = tree(legacy("N102", {**GIVEN["N102"], "handset": "motol7c", "operator-id": "0001570"}))
    # Then they carry the same elements, in the same order
    assert [e.tag for e in ours] == [e.tag for e in example]


def test_the_current_dialect_is_unchanged() -> None:
    # Given an N102 detail with the carrier's message id
    body = build_postback({"code": "N102", "fields": GIVEN["N102"]}, Dialect.CURRENT)
    names = [e.tag for e in tree(body)]
    # Then the current dialect names the carrier operator-id and tells no aggregator id,
    # nor a sent-as the detail does not give
    told = [n for n in POSTBACK_FIELDS if n in GIVEN["N102"] and n != "aggregator-id"]
    assert names == ["origin", "code", *told]
    assert "sent-as" not in names


def test_spid_and_operatorid_are_both_read_as_the_operator() -> None:
    for tag in ("SPID", "OPERATORID", "operator-id"):
        root = parse_document(f"<request><action>a</action><{tag}>383</{tag}></request>".encode())
        assert read_send(root.root, Dialect.CURRENT).operator_id == "383"


@pytest.mark.parametrize("tag", ["SPID", "OPERATORID"])
def test_a_legacy_request_keeps_its_carrier(tag: str) -> None:
    # Given a legacy send naming its carrier as 1.3 clients do
    body = f"<REQUEST><ACTION>sendSavedMMS</ACTION><{tag}>0001140</{tag}></REQUEST>"
    # When it is read, Then the carrier is kept, for the postbacks' SPID
    assert read_send(parse_document(body.encode()).root, Dialect.LEGACY).operator_id == "0001140"


def test_a_legacy_carrier_is_echoed_never_refused() -> None:
    # Given an account with an operator list, and legacy carriers on and off it
    account = Account(account_id="a", name="a", key_hash="h", operator_ids=["383"])
    # Then a legacy send keeps any 1-19 digit carrier, drops a malformed one, refuses none
    assert operator_id_for(account, "0001140", legacy=True) == "0001140"
    assert operator_id_for(account, "not-a-carrier", legacy=True) == ""
    # And the current dialect still refuses both (E651, E650)
    for raw, code in (("0001140", "E651"), ("not-a-carrier", "E650")):
        with pytest.raises(ApiError) as refused:
            operator_id_for(account, raw)
        assert refused.value.code == code


def sms_mt_n202_elements() -> set[str]:
    """The elements 1.3's "SMS MT N202" grammar requires (tests/fixtures/skycore13)."""
    text = (FIXTURES / "grammars" / "postbacks.rnc").read_text()
    block = text.split("# SMS MT N202", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"element (\w+)", block)) - {"POSTBACK"}


@pytest.mark.parametrize("code", ["N202", "E202"])
def test_fallback_sms_outcomes_carry_the_13_sms_mt_elements(code: str) -> None:
    # Given a fallback SMS outcome as the report service gives it
    root = tree(legacy(code, GIVEN[code]))
    # Then it carries every element of 1.3's SMS MT N202 grammar, FROM_MASK empty as
    # 1.3's SMS examples have it, ORIGIN that of 1.3's MMS page example of this case
    assert sms_mt_n202_elements() - {"CODE"} <= {e.tag for e in root}
    assert root.findtext("FROM_MASK") == ""
    assert root.findtext("ORIGIN") == "MMS_MT"
    # And the current dialect has no from-mask
    current = tree(build_postback({"code": code, "fields": GIVEN[code]}, Dialect.CURRENT))
    assert "from-mask" not in {e.tag for e in current}


def test_e102_without_a_reason_fails_the_legacy_schema() -> None:
    # Given an E102 with the carrier's reason, as 1.3's example
    body = legacy("E102", {**GIVEN["E102"], "status-details": "Recipient blocked"})
    assert valid("postback", body)
    # When the reason is taken out, Then it no longer matches
    root = tree(body)
    [reason] = root.findall("STATUSDETAILS")
    root.remove(reason)
    assert not schema("postback").validate(root)


# ---- the older request layout -------------------------------------------------------

FLAT = (
    "<REQUEST><ACTION>saveMMS</ACTION><API_KEY>k</API_KEY><SUBJECT>s</SUBJECT>"
    "<NAME>fishtank</NAME><SLIDE><IMAGE><URL>http://x/1.jpg</URL></IMAGE>"
    "<AUDIO><URL>http://x/1.mp3</URL></AUDIO><TEXT>Here</TEXT><DURATION>5</DURATION></SLIDE>"
    "<SLIDE><TEXT>two</TEXT></SLIDE></REQUEST>"
)
NESTED = (
    "<REQUEST><ACTION>saveMMS</ACTION><API_KEY>k</API_KEY><SUBJECT>s</SUBJECT>"
    "<CONTENT><NAME>fishtank</NAME><SEQUENCE><SLIDE duration='5'>"
    "<IMAGE><URL>http://x/1.jpg</URL></IMAGE><AUDIO><URL>http://x/1.mp3</URL></AUDIO>"
    "<TEXT>Here</TEXT></SLIDE><SLIDE><TEXT>two</TEXT></SLIDE></SEQUENCE></CONTENT></REQUEST>"
)


def test_content_sequence_is_the_same_request_as_the_flat_layout() -> None:
    flat = read_save(parse_document(FLAT.encode()).root)
    nested = read_save(parse_document(NESTED.encode()).root)
    assert nested == flat
    assert nested.name == "fishtank"
    assert [s.duration for s in nested.slides] == ["5", None]


def test_the_13_example_requests_of_both_layouts_read_alike() -> None:
    old = read_save(
        parse_document((FIXTURES / "requests/saveMMS-content-sequence.xml").read_bytes()).root
    )
    assert old.name == "fishtank"
    assert old.subject == "The subject"
    [slide] = old.slides
    assert slide.duration == "5"
    assert [m.kind.value for m in slide.media] == ["image", "audio"]
    # The example's indentation around the text is not part of it (docs/actions.md)
    assert slide.text == "Here is some text tralalala...."
    send = parse_document((FIXTURES / "requests/sendMMS-content-sequence.xml").read_bytes()).root
    assert read_save(send).name == "my fishtank"
    assert read_send(send, Dialect.LEGACY).to == "15551234888"


def test_a_duration_element_wins_over_the_attribute() -> None:
    body = NESTED.replace("<TEXT>Here</TEXT>", "<TEXT>Here</TEXT><DURATION>7</DURATION>")
    assert read_save(parse_document(body.encode()).root).slides[0].duration == "7"


def test_the_attribute_is_kept_raw_for_the_slide_rules() -> None:
    # The rules (E230, ASCII digits only) judge it as they judge a DURATION element.
    body = NESTED.replace("duration='5'", "duration='\u0665'")
    assert read_save(parse_document(body.encode()).root).slides[0].duration == "\u0665"


def test_slides_of_both_layouts_keep_document_order() -> None:
    body = FLAT.replace(
        "</NAME>",
        "</NAME><CONTENT><SEQUENCE><SLIDE duration='3'><TEXT>c</TEXT></SLIDE></SEQUENCE></CONTENT>",
    )
    slides = read_save(parse_document(body.encode()).root).slides
    assert [(s.number, s.text) for s in slides] == [(1, "c"), (2, "Here"), (3, "two")]


def test_the_current_dialect_does_not_read_content() -> None:
    body = (
        "<request><action>saveMMS</action><content><name>n</name><sequence><slide>"
        "<message-text>t</message-text></slide></sequence></content></request>"
    )
    save = read_save(parse_document(body.encode()).root)
    assert (save.name, save.slides) == (None, [])


def test_the_element_cap_holds_for_the_old_layout() -> None:
    slides = "<SLIDE duration='1'/>" * MAX_ELEMENTS
    body = f"<REQUEST><CONTENT><SEQUENCE>{slides}</SEQUENCE></CONTENT></REQUEST>"
    with pytest.raises(ApiError) as raised:
        parse_document(body.encode())
    assert raised.value.code == "E100"


def test_only_the_duration_attribute_is_kept() -> None:
    body = "<REQUEST><SLIDE duration='2' x='1' DURATION='9'><TEXT>t</TEXT></SLIDE></REQUEST>"
    [slide] = parse_document(body.encode()).root.children
    assert slide.attributes == {"duration": "2"}
