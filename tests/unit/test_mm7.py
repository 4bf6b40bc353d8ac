"""MM7 messages: SubmitReq round trips, operator-shaped answers, faults, reports, status table.

The inline examples are shaped like the public worked examples of sinch/docs
(docs/mms/mm7-service/): namespaces, header, element names and nesting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import get_args

import pytest
from lxml import etree

from mmsapi.carrier import mm7
from mmsapi.carrier.message import MessagePart, OutgoingMessage, SlidePlan
from mmsapi.carrier.mm7 import (
    NAMESPACES,
    SOAP_ENV,
    STATUS_TABLE,
    Action,
    MM7Error,
    MMStatus,
    StatusClass,
    Version,
    action_for,
    build_delivery_report_req,
    build_delivery_report_rsp,
    build_fault,
    build_submit_req,
    build_submit_rsp,
    parse_delivery_report,
    parse_submit_req,
    parse_submit_rsp,
)
from mmsapi.carrier.smil import build_smil

VERSIONS: tuple[Version, ...] = get_args(Version)
REL6 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
REL5 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-2"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\r\n--boundary-like\r\n\xff\xd9"
AMR = b"#!AMR\n" + bytes(range(255, -1, -1)) * 4

# ---- operator-shaped examples (sinch/docs) -------------------------------------

SUBMIT_RSP_SUCCESS = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns=
"http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4">
   <soap-env:Header>
      <TransactionID soap-env:mustUnderstand="1">1000001</TransactionID>
   </soap-env:Header>
   <soap-env:Body>
      <SubmitRsp>
         <MM7Version>6.8.0</MM7Version>
         <Status>
            <StatusCode>1000</StatusCode>
            <StatusText>Successfully parsed and validated request</StatusText>
         </Status>
         <MessageID>369500617770864640</MessageID>
      </SubmitRsp>
   </soap-env:Body>
</soap-env:Envelope>
"""

SUBMIT_RSP_FAULT = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns=
"http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4">
   <soap-env:Header>
      <TransactionID soap-env:mustUnderstand="1">1000001</TransactionID>
   </soap-env:Header>
   <soap-env:Body>
       <soap-env:Fault>
            <faultcode>soap-env:Client</faultcode>
            <faultstring>Client error</faultstring>
            <detail>
                  <RSErrorRsp>
                    <MM7Version>6.8.0</MM7Version>
                    <Status>
                        <StatusCode>2007</StatusCode>
                        <StatusText>Unable to parse request</StatusText>
                        <Details>Message format corrupt</Details>
                    </Status>
                  </RSErrorRsp>
            </detail>
        </soap-env:Fault>
   </soap-env:Body>
</soap-env:Envelope>
"""

DELIVERY_REPORT_REQ = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns=
"http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4">
<soap-env:Header>
   <TransactionID soap-env:mustUnderstand="1">10000001</TransactionID>
</soap-env:Header>
<soap-env:Body>
   <DeliveryReportReq>
      <MM7Version>6.8.0</MM7Version>
      <MessageID>369500617770864640</MessageID>
      <Recipient>
         <Number>16175550123</Number>
      </Recipient>
      <Sender>
         <Number>111122</Number>
      </Sender>
      <Date>2015-03-16T14:03:51.749Z</Date>
      <MMStatus>Retrieved</MMStatus>
      <StatusText>Success</StatusText>
      <UACapabilities UAProf="Samsung Galaxy" />
   </DeliveryReportReq>
</soap-env:Body>
</soap-env:Envelope>
"""

# A 5.3.0 report with mm7: prefixes and no UACapabilities (REL-5 has none).
DELIVERY_REPORT_REQ_5 = b"""<?xml version="1.0"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">
 <env:Header>
  <mm7:TransactionID xmlns:mm7="http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-2"
    env:mustUnderstand="1">dr-77</mm7:TransactionID>
 </env:Header>
 <env:Body>
  <mm7:DeliveryReportReq xmlns:mm7="http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-2">
   <mm7:MM7Version>5.3.0</mm7:MM7Version>
   <mm7:MessageID>m-77</mm7:MessageID>
   <mm7:Recipient><mm7:Number>+447700900750</mm7:Number></mm7:Recipient>
   <mm7:Sender><mm7:ShortCode>28444</mm7:ShortCode></mm7:Sender>
   <mm7:Date>2024-05-01T10:00:00+02:00</mm7:Date>
   <mm7:MMStatus>Unrecognized</mm7:MMStatus>
  </mm7:DeliveryReportReq>
 </env:Body>
</env:Envelope>
"""


# ---- helpers -------------------------------------------------------------------


def message(subject: str = "Spring sale & <more> at 50%") -> OutgoingMessage:
    parts = [
        MessagePart(
            content_id="slide1-image.jpg",
            content_type="image/jpeg",
            filename="photo 1.jpg",
            data=JPEG,
        ),
        MessagePart(
            content_id="slide1-text.txt",
            content_type="text/plain; charset=utf-8",
            filename="slide1.txt",
            data="Hello\r\nwörld\n".encode(),
        ),
        MessagePart(
            content_id="slide2-audio.amr", content_type="audio/amr", filename="a.amr", data=AMR
        ),
        MessagePart(
            content_id="card.vcf",
            content_type="text/x-vcard",
            filename="card.vcf",
            data=b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Shop\r\nEND:VCARD\r\n",
        ),
    ]
    slides = [
        SlidePlan(duration=5, image="slide1-image.jpg", text="slide1-text.txt"),
        SlidePlan(duration=7, audio="slide2-audio.amr", objects=["card.vcf"]),
    ]
    return OutgoingMessage(subject=subject, slides=slides, parts=parts)


def build(version: Version = "6.8.0", **overrides: object) -> tuple[bytes, str]:
    return build_from({"version": version, **overrides})


def build_from(overrides: dict[str, object]) -> tuple[bytes, str]:
    given: dict[str, object] = {
        "recipient": "+14045551234",
        "sender": "28444",
        "vasp_id": "vasp-key",
        "vas_id": "12345",
        "service_code": "svc-1",
        "transaction_id": "tx-0001",
        **overrides,
    }
    msg = given.pop("message", None) or message()
    assert isinstance(msg, OutgoingMessage)
    return build_submit_req(msg, **given)  # type: ignore[arg-type]


def mime(body: bytes, content_type: str) -> EmailMessage:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    parsed = BytesParser(policy=policy.default).parsebytes(head + body)
    assert isinstance(parsed, EmailMessage)
    return parsed


def subparts(entity: EmailMessage) -> list[EmailMessage]:
    return [p for p in entity.iter_parts() if isinstance(p, EmailMessage)]


def soap_of(body: bytes, content_type: str) -> etree._Element:
    first = subparts(mime(body, content_type))[0]
    data = first.get_payload(decode=True)
    assert isinstance(data, bytes)
    return etree.fromstring(data)


def names(element: etree._Element) -> list[str]:
    return [etree.QName(c).localname for c in element]


# ---- SubmitReq -----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_submit_req_round_trips(version: Version) -> None:
    # Given a two-slide message with an image, a text, an audio and a vCard
    msg = message()

    # When it is built as a SubmitReq and parsed back as an MMSC would
    body, content_type = build(version, message=msg, linked_id="mo-9")
    got = parse_submit_req(body, content_type)

    # Then every field, the SMIL and every part's bytes come back unchanged
    assert got.transaction_id == "tx-0001"
    assert got.version == version
    assert (got.vasp_id, got.vas_id, got.service_code) == ("vasp-key", "12345", "svc-1")
    assert got.recipients == ["14045551234"]  # international, without '+'
    assert got.sender == "28444"
    assert got.subject == msg.subject
    assert got.linked_id == "mo-9"
    assert got.delivery_report is True
    assert got.smil == build_smil(msg.slides, {p.content_id: p for p in msg.parts})
    assert got.parts == msg.parts


@pytest.mark.parametrize(("version", "namespace"), [("5.3.0", REL5), ("6.8.0", REL6)])
def test_submit_req_envelope_shape(version: Version, namespace: str) -> None:
    # Given a SubmitReq of either version
    body, content_type = build(version)

    # When its SOAP part is read
    envelope = soap_of(body, content_type)
    header, soap_body = list(envelope)

    # Then the TransactionID is in the header, in the version's namespace, mustUnderstand="1"
    assert etree.QName(envelope).namespace == SOAP_ENV
    (tid,) = list(header)
    assert tid.tag == f"{{{namespace}}}TransactionID"
    assert tid.get(f"{{{SOAP_ENV}}}mustUnderstand") == "1"
    assert tid.text == "tx-0001"
    # And SubmitReq is in the same namespace, its elements in schema order
    (req,) = list(soap_body)
    assert req.tag == f"{{{namespace}}}SubmitReq"
    assert names(req) == [
        "MM7Version",
        "SenderIdentification",
        "Recipients",
        "ServiceCode",
        "DeliveryReport",
        "Subject",
        "Content",
    ]
    assert req.findtext(f"{{{namespace}}}MM7Version") == version
    number = req.find(f"{{{namespace}}}Recipients/{{{namespace}}}To/{{{namespace}}}Number")
    assert number is not None
    assert number.text == "14045551234"
    assert req.find(f".//{{{namespace}}}SenderAddress/{{{namespace}}}ShortCode") is not None
    content = req.find(f"{{{namespace}}}Content")
    assert content is not None
    assert content.get("href") == "cid:mm7-content"


def test_submit_req_mime_structure() -> None:
    # Given a SubmitReq
    body, content_type = build()

    # When its MIME structure is read with the standard library
    outer = mime(body, content_type)
    soap, content = subparts(outer)

    # Then the SOAP part comes first and is the start of a text/xml multipart/related
    assert outer.get_content_type() == "multipart/related"
    assert outer.get_param("type") == "text/xml"
    assert outer.get_param("start") == "<mm7-start>"
    assert soap["Content-ID"] == "<mm7-start>"
    assert soap.get_content_type() == "text/xml"
    # And the Content href names the MM, a multipart/related whose start is the SMIL part
    assert content["Content-ID"] == "<mm7-content>"
    assert content.get_content_type() == "multipart/related"
    assert content.get_param("start") == "<mms.smil>"
    inner = subparts(content)
    assert inner[0]["Content-ID"] == "<mms.smil>"
    assert inner[0].get_content_type() == "application/smil"
    # And every MM part is binary (HTTP is 8-bit clean) with its Content-ID and file name
    assert [p["Content-ID"] for p in inner[1:]] == [
        "<slide1-image.jpg>",
        "<slide1-text.txt>",
        "<slide2-audio.amr>",
        "<card.vcf>",
    ]
    assert {p["Content-Transfer-Encoding"] for p in inner} == {"binary"}
    assert inner[1]["Content-Location"] == "photo%201.jpg"


def test_submit_req_is_deterministic_and_long_senders_are_numbers() -> None:
    # Given the same message built twice, and once from a long number
    first, second = build(), build()
    body, content_type = build(sender="+14045550000", delivery_report=False)

    # When / Then the same input gives the same bytes and header
    assert first == second
    # And a long sender is a Number, and delivery reports can be declined
    req = soap_of(body, content_type)[1][0]
    assert req.find(f".//{{{REL6}}}SenderAddress/{{{REL6}}}Number") is not None
    assert req.findtext(f"{{{REL6}}}DeliveryReport") == "false"


def test_subject_is_escaped_utf8() -> None:
    # Given a subject with XML specials and Latin-1 letters
    subject = 'Café "deals" <50%> & more'

    # When built
    body, content_type = build(message=message(subject))

    # Then the SOAP part carries it escaped as UTF-8 and it parses back intact
    assert '<Subject>Café "deals" &lt;50%&gt; &amp; more</Subject>'.encode() in body
    assert parse_submit_req(body, content_type).subject == subject


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"recipient": "+1 404 555"}, "not an international number"),
        ({"recipient": "alice@example.com"}, "not an international number"),
        ({"sender": ""}, "not an international number"),
    ],
)
def test_submit_req_refuses_bad_numbers(overrides: dict[str, object], reason: str) -> None:
    # Given a recipient or sender that is not an international number
    # When / Then building refuses it
    with pytest.raises(ValueError, match=reason):
        build_from(overrides)


@pytest.mark.parametrize(
    ("content_id", "content_type"),
    [("mms.smil", "image/jpeg"), ("a.jpg", "image/jpeg\r\nX-Injected: 1")],
)
def test_submit_req_refuses_reserved_ids_and_header_injection(
    content_id: str, content_type: str
) -> None:
    # Given a part with a reserved content id, or a content type smuggling a header
    part = MessagePart(content_id=content_id, content_type=content_type, filename="a", data=b"1")
    msg = OutgoingMessage(subject="s", slides=[SlidePlan(image=content_id)], parts=[part])

    # When / Then building refuses it
    with pytest.raises(ValueError, match=r"invalid|reserved"):
        build(message=msg)


def test_parse_submit_req_refuses_incomplete_requests() -> None:
    # Given a SubmitReq whose MM lost its SMIL, and one whose Content names no part
    body, content_type = build()
    no_smil = body.replace(b"application/smil", b"application/x-other")
    no_content = body.replace(b'href="cid:mm7-content"', b'href="cid:elsewhere"')

    # When / Then each is refused as not a complete SubmitReq
    with pytest.raises(MM7Error, match="no SMIL"):
        parse_submit_req(no_smil.replace(b'start="<mms.smil>"', b'start="<x>"'), content_type)
    with pytest.raises(MM7Error, match="names no part"):
        parse_submit_req(no_content, content_type)
    with pytest.raises(MM7Error, match="multipart"):
        parse_submit_req(SUBMIT_RSP_SUCCESS, "text/xml")


# ---- SubmitRsp and faults ------------------------------------------------------


def test_parse_operator_submit_rsp() -> None:
    # Given the operator's success example (default namespace on the Envelope)
    # When parsed
    result = parse_submit_rsp(SUBMIT_RSP_SUCCESS, "application/xml; charset=utf-8")

    # Then the status, message id and transaction id are read
    assert result.status_code == 1000
    assert result.status_text == "Successfully parsed and validated request"
    assert result.message_id == "369500617770864640"
    assert result.transaction_id == "1000001"
    assert result.action is Action.OK


def test_parse_operator_fault() -> None:
    # Given the operator's failure example: a SOAP Fault with an RSErrorRsp
    # When parsed
    result = parse_submit_rsp(SUBMIT_RSP_FAULT, "text/xml")

    # Then it is a result with the MM7 status of the detail, not an exception
    assert result.status_code == 2007
    assert result.status_text == "Unable to parse request"
    assert result.details == "Message format corrupt"
    assert result.message_id is None
    assert result.transaction_id == "1000001"
    assert result.action is Action.FAIL


@pytest.mark.parametrize(
    ("faultcode", "expected"), [("soap-env:Server", 3000), ("soap-env:Client", 2000), ("x", 4000)]
)
def test_fault_without_mm7_status(faultcode: str, expected: int) -> None:
    # Given a bare SOAP fault without an MM7 status
    body = (
        f'<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><e:Fault><faultcode>{faultcode}</faultcode>'
        "<faultstring>busy</faultstring></e:Fault></e:Body></e:Envelope>"
    ).encode()

    # When parsed
    result = parse_submit_rsp(body, "text/xml")

    # Then SOAP's own meaning picks the code (Server: retry later; Client: our fault)
    assert (result.status_code, result.status_text) == (expected, "busy")


def test_error_rsp_directly_in_body() -> None:
    # Given an MMSC that answers an RSErrorRsp in the Body, StatusCode without a Status wrapper
    body = f"""<env:Envelope xmlns:env="{SOAP_ENV}"><env:Header>
      <mm7:TransactionID xmlns:mm7="{REL5}" env:mustUnderstand="1">tid</mm7:TransactionID>
      </env:Header><env:Body><mm7:RSErrorRsp xmlns:mm7="{REL5}">
      <StatusText>Service denied</StatusText><MM7Version>5.3.0</MM7Version>
      <StatusCode>4007</StatusCode></mm7:RSErrorRsp></env:Body></env:Envelope>""".encode()

    # When parsed
    result = parse_submit_rsp(body, "text/xml; charset=utf-8")

    # Then the refusal is read and means "send the fallback SMS"
    assert (result.status_code, result.transaction_id) == (4007, "tid")
    assert result.action is Action.FALLBACK


def test_multipart_submit_rsp() -> None:
    # Given an MMSC that wraps its SubmitRsp in a SOAP-with-attachments multipart
    body = (
        b"--b1\r\nContent-Type: text/xml\r\nContent-ID: <rsp>\r\n\r\n"
        + build_submit_rsp("t-5", 1000, "Success", "m-5", "5.3.0")
        + b"\r\n--b1--\r\n"
    )

    # When parsed
    result = parse_submit_rsp(
        body, 'multipart/related; type="text/xml"; boundary="b1"; start="<rsp>"'
    )

    # Then the SOAP part is found and read
    assert (result.status_code, result.message_id, result.transaction_id) == (1000, "m-5", "t-5")


@pytest.mark.parametrize("version", VERSIONS)
def test_built_answers_parse_back(version: Version) -> None:
    # Given a SubmitRsp and a fault as the simulated MMSC builds them
    ok = build_submit_rsp("t-1", 1000, "Success", "m-1", version)
    refused = build_fault("t-2", 4007, "Service denied", "no MMS plan", version)

    # When parsed
    ok_result, refused_result = (
        parse_submit_rsp(ok, "text/xml"),
        parse_submit_rsp(refused, "text/xml"),
    )

    # Then they say what was built, in the version's namespace
    assert (ok_result.status_code, ok_result.message_id, ok_result.transaction_id) == (
        1000,
        "m-1",
        "t-1",
    )
    assert (refused_result.status_code, refused_result.details) == (4007, "no MMS plan")
    assert NAMESPACES[version].encode() in ok
    assert b'mustUnderstand="1"' in ok
    assert b"<faultcode>soap-env:Server</faultcode>" in refused


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<html><body>502 Bad Gateway</body></html>",
        f'<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body/></e:Envelope>'.encode(),
        f'<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><DeliverReq/></e:Body></e:Envelope>'.encode(),
        f'<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><SubmitRsp><Status>'
        "<StatusCode>OK</StatusCode></Status></SubmitRsp></e:Body></e:Envelope>".encode(),
        f'<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><SubmitRsp/></e:Body></e:Envelope>'.encode(),
    ],
    ids=["empty", "text", "html", "empty-body", "other-operation", "bad-code", "no-code"],
)
def test_garbage_raises(body: bytes) -> None:
    # Given something that is not an MM7 answer
    # When / Then parsing raises MM7Error
    with pytest.raises(MM7Error):
        parse_submit_rsp(body, "text/xml")


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + SUBMIT_RSP_SUCCESS.split(b"?>", 1)[1].replace(b"1000001", b"&x;"),
        b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><a>&lol2;</a>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>'.encode(
            "utf-16"
        ),
    ],
    ids=["xxe", "billion-laughs", "utf16-doctype"],
)
def test_dtds_and_entities_are_refused(body: bytes) -> None:
    # Given an answer or report carrying a DTD with entities
    # When / Then every parser refuses it before expanding anything
    with pytest.raises(MM7Error, match=r"DTD|entities"):
        parse_submit_rsp(body, "text/xml")
    with pytest.raises(MM7Error, match=r"DTD|entities"):
        parse_delivery_report(body, "text/xml")


# ---- delivery reports ----------------------------------------------------------


def test_parse_operator_delivery_report() -> None:
    # Given the operator's DeliveryReportReq example
    # When parsed
    report = parse_delivery_report(DELIVERY_REPORT_REQ, 'multipart/related; type="text/xml";')

    # Then every field is read, the handset profile from UACapabilities
    assert report.transaction_id == "10000001"
    assert report.message_id == "369500617770864640"
    assert (report.recipient, report.sender) == ("16175550123", "111122")
    assert report.mm_status is MMStatus.RETRIEVED
    assert report.status_text == "Success"
    assert report.date == datetime(2015, 3, 16, 14, 3, 51, 749000, tzinfo=UTC)
    assert report.ua_prof == "Samsung Galaxy"
    assert report.version == "6.8.0"


def test_parse_rel5_delivery_report_with_prefixes() -> None:
    # Given a 5.3.0 report with prefixed elements, '+' numbers and a US spelling
    # When parsed
    report = parse_delivery_report(DELIVERY_REPORT_REQ_5, "text/xml")

    # Then the numbers lose '+', the spelling maps to Unrecognised, no profile is invented
    assert (report.transaction_id, report.message_id) == ("dr-77", "m-77")
    assert (report.recipient, report.sender) == ("447700900750", "28444")
    assert report.mm_status is MMStatus.UNRECOGNISED
    assert report.mm_status_raw == "Unrecognized"
    assert report.ua_prof is None
    assert report.version == "5.3.0"


def test_unknown_mm_status_is_indeterminate_but_kept() -> None:
    # Given a report with a status no list knows
    body = DELIVERY_REPORT_REQ.replace(b"<MMStatus>Retrieved", b"<MMStatus>Vanished")

    # When parsed
    report = parse_delivery_report(body, "text/xml")

    # Then it counts as Indeterminate and the raw value is kept
    assert (report.mm_status, report.mm_status_raw) == (MMStatus.INDETERMINATE, "Vanished")


@pytest.mark.parametrize("version", VERSIONS)
def test_delivery_report_round_trip(version: Version) -> None:
    # Given a report as the simulated MMSC builds it
    when = datetime(2024, 6, 7, 12, 27, 29, 123000, tzinfo=UTC)
    body, content_type = build_delivery_report_req(
        transaction_id="dr-1",
        message_id="m-1",
        recipient="+14045551234",
        sender="28444",
        mm_status=MMStatus.RETRIEVED,
        date=when,
        ua_prof="http://www.apple.com/mms/uaprof.rdf",
        version=version,
    )

    # When parsed
    report = parse_delivery_report(body, content_type)

    # Then it says the same; UACapabilities exists only from REL-6 on
    assert (report.message_id, report.recipient, report.sender) == ("m-1", "14045551234", "28444")
    assert (report.mm_status, report.date, report.version) == (MMStatus.RETRIEVED, when, version)
    expected_profile = None if version == "5.3.0" else "http://www.apple.com/mms/uaprof.rdf"
    assert report.ua_prof == expected_profile
    assert b"<Date>2024-06-07T12:27:29.123Z</Date>" in body


@pytest.mark.parametrize(("version", "namespace"), [("5.3.0", REL5), ("6.8.0", REL6)])
def test_delivery_report_rsp(version: Version, namespace: str) -> None:
    # Given a received report's transaction id
    # When the answer is built
    envelope = etree.fromstring(build_delivery_report_rsp("dr-9", version))

    # Then it echoes the TransactionID (mustUnderstand) and says 1000
    tid = envelope.find(f"{{{SOAP_ENV}}}Header/{{{namespace}}}TransactionID")
    assert tid is not None
    assert tid.text == "dr-9"
    assert tid.get(f"{{{SOAP_ENV}}}mustUnderstand") == "1"
    rsp = envelope.find(f"{{{SOAP_ENV}}}Body/{{{namespace}}}DeliveryReportRsp")
    assert rsp is not None
    assert rsp.findtext(f"{{{namespace}}}MM7Version") == version
    assert rsp.findtext(f"{{{namespace}}}Status/{{{namespace}}}StatusCode") == "1000"


def test_delivery_report_parser_refuses_other_operations() -> None:
    # Given a SubmitRsp posted to the report URL
    # When / Then it is not taken for a report
    with pytest.raises(MM7Error, match="expected DeliveryReportReq"):
        parse_delivery_report(SUBMIT_RSP_SUCCESS, "text/xml")


# ---- the status-code table -----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (1000, Action.OK),
        (1100, Action.OK),
        (2002, Action.FALLBACK),
        (2004, Action.FALLBACK),
        (2007, Action.FAIL),
        (2560, Action.FALLBACK),
        (2568, Action.FAIL),  # not listed: 2xxx default (our account or request)
        (3000, Action.RETRY),
        (3001, Action.FAIL),  # blacklisted: no SMS either
        (3500, Action.RETRY),
        (3510, Action.RETRY),
        (3999, Action.RETRY),  # not listed: 3xxx default
        (4000, Action.FALLBACK),
        (4005, Action.FAIL),
        (4006, Action.RETRY),
        (4007, Action.FALLBACK),
        (4999, Action.FALLBACK),  # not listed: 4xxx default
        (6102, Action.FAIL),  # outside the classes
    ],
)
def test_status_actions(code: int, action: Action) -> None:
    # Given a SubmitRsp status code
    # When / Then the table (or the class default) gives the sender's action
    assert action_for(code) is action


def test_status_classes_and_table_consistency() -> None:
    # Given the table
    # When / Then every success code is 1xxx and only 1xxx codes are OK
    assert StatusClass.of(1000) is StatusClass.SUCCESS
    assert StatusClass.of(2007) is StatusClass.CLIENT_ERROR
    assert StatusClass.of(3500) is StatusClass.SERVER_ERROR
    assert StatusClass.of(4007) is StatusClass.SERVICE_ERROR
    assert StatusClass.of(999) is StatusClass.UNKNOWN
    for code, (action, _text) in STATUS_TABLE.items():
        assert (action is Action.OK) == (StatusClass.of(code) is StatusClass.SUCCESS)


# Bytes a MIME parser could mistake for structure: every line end, NUL, a fake delimiter.
NASTY = b"\r\n--=_mm_\r\n\x00\r\rline\n\n\r\nContent-Type: text/plain\r\n\r\n" + bytes(range(256))


@pytest.mark.parametrize("encoding", ["binary", "base64"])
def test_parts_of_any_bytes_round_trip_in_either_encoding(encoding: str) -> None:
    # Given parts whose bytes hold line ends of every kind, NUL and look-alike delimiters
    msg = message()
    msg.parts[0].data = NASTY * 50
    msg.parts[2].data = NASTY + b"\r\n"  # ends with a line end, as the delimiter starts
    # When they travel in the chosen encoding and are parsed back as an MMSC would
    body, content_type = build(message=msg, part_encoding=encoding)
    got = parse_submit_req(body, content_type)
    # Then every byte comes back, and the body is as long as the encoding makes it
    assert got.parts == msg.parts
    media = sum(len(p.data) for p in msg.parts)
    assert (len(body) < media * 1.2) is (encoding == "binary")


def test_a_part_holding_the_boundary_goes_base64() -> None:
    # Given a part whose bytes contain the delimiter of the multipart it goes into
    boundary = "=_mm_0123456789abcdef"
    kind = "application/octet-stream"
    data = b"before\r\n--" + boundary.encode() + b"\r\nafter"
    # When it is written as a binary part
    written = mm7._attachment(
        "a.bin", "application/octet-stream", "a.bin", data, "binary", boundary
    )
    # Then it goes base64 instead, so the delimiter never appears in the body
    assert b"Content-Transfer-Encoding: base64" in written
    assert b"--" + boundary.encode() not in written
    clean = mm7._attachment("a.bin", kind, "a.bin", b"x", "binary", boundary)
    assert b"Content-Transfer-Encoding: binary" in clean
