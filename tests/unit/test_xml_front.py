"""The XML front door: dialects, aliases, hostile documents, answers."""

from __future__ import annotations

import pytest
from lxml import etree

from mmsapi.errors import ApiError
from mmsapi.models import Dialect
from mmsapi.xml import render
from mmsapi.xml.dialect import ALIASES, canonical, written
from mmsapi.xml.parse import extract_document, parse_document, sniff_dialect
from mmsapi.xml.requests import read_save


def test_every_alias_of_the_table_reads_as_its_canonical_name() -> None:
    # Given every spelling of every aliased field, in several cases
    for name, aliases in ALIASES.items():
        for spelling in (name, *aliases, name.upper(), name.replace("-", "_")):
            # When it is read / Then it is the canonical field
            assert canonical(spelling) == name, spelling


def test_legacy_document_is_read_with_the_same_fields_as_the_current_one() -> None:
    # Given the same saveMMS in both dialects
    current = parse_document(
        b"<request><action>saveMMS</action><api-key>k</api-key><name>n</name>"
        b"<message-subject>s</message-subject><fallback-sms-text>f</fallback-sms-text>"
        b"<slide><message-text>hi</message-text><duration>5</duration></slide></request>"
    )
    legacy = parse_document(
        b"<REQUEST><ACTION>saveMMS</ACTION><API_KEY>k</API_KEY><NAME>n</NAME>"
        b"<SUBJECT>s</SUBJECT><FALLBACKSMSTEXT>f</FALLBACKSMSTEXT>"
        b"<SLIDE><TEXT>hi</TEXT><DURATION>5</DURATION></SLIDE></REQUEST>"
    )
    # Then the dialects differ and the requests do not
    assert current.dialect is Dialect.CURRENT
    assert legacy.dialect is Dialect.LEGACY
    assert read_save(current.root) == read_save(legacy.root)
    assert legacy.root.value("api-key") == "k"


def test_answers_are_written_in_the_dialect_asked() -> None:
    # Given a success with an mms-id
    fields: list[render.Field] = [("mms-id", "35674")]
    # When written in each dialect
    current = etree.fromstring(render.response(fields, Dialect.CURRENT))
    legacy = etree.fromstring(render.response(fields, Dialect.LEGACY))
    # Then the names follow the documents' examples
    assert [e.tag for e in current] == ["status", "mms-id"]
    assert [e.tag for e in legacy] == ["STATUS", "MMSID"]
    assert legacy.tag == "RESPONSE"
    assert written("client-reference", Dialect.LEGACY) == "CLIENT_REFERENCE"


def test_failure_answer_carries_code_and_text() -> None:
    answer = etree.fromstring(render.failure(ApiError("E313", x=2), Dialect.LEGACY))
    assert answer.findtext("STATUS") == "Failure"
    assert answer.findtext("ERRORCODE") == "E313"
    assert answer.findtext("ERRORINFO") == "Slide 2 is empty."


def test_control_characters_in_echoed_values_do_not_break_the_answer() -> None:
    answer = render.response([("mms-id", "1\x00\x1b2")], Dialect.CURRENT)
    assert etree.fromstring(answer).findtext("mms-id") == "12"


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE request [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<request><action>saveMMS</action><api-key>&xxe;</api-key></request>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<request><action>&lol3;</action></request>"""

EXTERNAL_DTD = (
    b'<?xml version="1.0"?><!DOCTYPE request SYSTEM "http://169.254.169.254/x.dtd"><request/>'
)

UTF16_XXE = XXE.replace(b'<?xml version="1.0"?>', b"").decode().encode("utf-16")


@pytest.mark.parametrize("document", [XXE, LAUGHS, EXTERNAL_DTD, UTF16_XXE])
def test_dtds_and_entities_are_refused_with_e108(document: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        parse_document(document)
    assert caught.value.code == "E108"


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (b"<request><action>saveMMS</action>", "E108"),
        (b"<request><a></b></request>", "E108"),
        (b"<html><body>hi</body></html>", "E100"),
        (b"<\x00>", "E108"),
    ],
)
def test_broken_or_foreign_documents(document: bytes, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_document(document)
    assert caught.value.code == code


def test_form_field_xml_and_xmldata_and_query_are_accepted() -> None:
    assert extract_document(b"xml=%3Crequest%2F%3E") == b"<request/>"
    assert extract_document(b"XMLDATA=%3CREQUEST%2F%3E&x=1") == b"<REQUEST/>"
    assert extract_document(b"", {"xml": "<request/>"}) == b"<request/>"


@pytest.mark.parametrize("body", [b"", b"hello=world", b"\xfa\xfb\xfc", b"   "])
def test_bodies_without_a_document_are_e100(body: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        extract_document(body)
    assert caught.value.code == "E100"


def test_dialect_of_unparseable_document_is_sniffed_for_its_answer() -> None:
    assert sniff_dialect(b"<REQUEST><ACTION>") is Dialect.LEGACY
    assert sniff_dialect(b"<request><action>") is Dialect.CURRENT
