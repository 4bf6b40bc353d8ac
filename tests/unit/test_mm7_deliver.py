"""MM7 DeliverReq (an MMS from a phone): read in both versions, answered, and bounded.

The requests are made by build_deliver_req, the builder the simulated MMSC's phone uses;
the hostile ones are such requests broken on purpose, or written by hand.
"""

from __future__ import annotations

import pytest
from lxml import etree

from mmsapi.carrier.message import MessagePart
from mmsapi.carrier.mm7 import NAMESPACES, STATUS_TABLE, Version
from mmsapi.carrier.mm7_deliver import (
    ADDRESS_NOT_FOUND,
    BOUNDS,
    CONTENT_REFUSED,
    FORMAT_CORRUPT,
    SERVER_ERROR,
    STATUS_TEXTS,
    VALIDATION_ERROR,
    Bounds,
    DeliverError,
    ReceivedDeliver,
    build_deliver_req,
    build_deliver_rsp,
    looks_like_deliver_req,
    parse_deliver_req,
    sniff_transaction_id,
)
from mmsapi.services.inbound import keyword_of

PICTURE = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"


def parts(text: str = "yes") -> list[MessagePart]:
    return [
        MessagePart(
            content_id="IMG_0001.jpg", content_type="image/jpeg", filename="IMG 0001.jpg",
            data=PICTURE,
        ),
        MessagePart(
            content_id="text_0.txt", content_type="text/plain; charset=utf-8",
            filename="text_0.txt", data=text.encode(),
        ),
    ]  # fmt: skip


def request(version: Version = "6.8.0", **given: object) -> tuple[bytes, str]:
    args: dict[str, object] = {
        "sender": "+14082257140",
        "recipient": "28444",
        "parts": parts(),
        "transaction_id": "tx-0001",
        "linked_id": "mo-77",
        "subject": "Re: your coupon",
    }
    return build_deliver_req(version=version, **{**args, **given})  # type: ignore[arg-type]


def refused(body: bytes, content_type: str, bounds: Bounds = BOUNDS) -> int:
    with pytest.raises(DeliverError) as caught:
        parse_deliver_req(body, content_type, bounds)
    return caught.value.status


@pytest.mark.parametrize("version", ["5.3.0", "6.8.0"])
@pytest.mark.parametrize("mixed", [False, True], ids=["related-with-smil", "mixed"])
def test_a_deliver_req_is_read_in_both_versions(version: Version, mixed: bool) -> None:
    # Given a DeliverReq with a picture and a text, as an MMSC posts it
    body, content_type = request(version, mixed=mixed)
    assert looks_like_deliver_req(body)
    # When it is read
    mo = parse_deliver_req(body, content_type)
    # Then its addressing, subject and every part are there, in the order sent
    assert (mo.transaction_id, mo.version, mo.linked_id) == ("tx-0001", version, "mo-77")
    assert (mo.sender, mo.recipients, mo.subject) == ("14082257140", ["28444"], "Re: your coupon")
    assert mo.timestamp is not None
    media = [p for p in mo.parts if not p.content_type.startswith("application/smil")]
    assert [p.content_type for p in media] == ["image/jpeg", "text/plain; charset=utf-8"]
    assert media[0].data == PICTURE
    assert media[0].filename == "IMG_0001.jpg"  # made safe for a header and a path
    assert mo.first_text == "yes"
    assert len(mo.parts) == (2 if mixed else 3)  # the SMIL is a part of its own


def test_the_soap_namespace_and_elements_are_the_schema_s() -> None:
    body, _content_type = request("5.3.0")
    start = body.index(b"<soap-env:Envelope")
    end = body.index(b"</soap-env:Envelope>") + len(b"</soap-env:Envelope>")
    root = etree.fromstring(body[start:end])
    req = root.find(f"{{*}}Body/{{{NAMESPACES['5.3.0']}}}DeliverReq")
    assert req is not None
    names = [etree.QName(c).localname for c in req]
    # The REL-5-MM7-1-2 order: MM7Version, LinkedID, Sender, Recipients, TimeStamp, Subject, Content
    assert names == [
        "MM7Version", "LinkedID", "Sender", "Recipients", "TimeStamp", "Subject", "Content",
    ]  # fmt: skip


@pytest.mark.parametrize("version", ["5.3.0", "6.8.0"])
def test_the_deliver_rsp_answers_in_the_request_s_version(version: Version) -> None:
    root = etree.fromstring(build_deliver_rsp("tx-0001", version).split(b"\n", 1)[1])
    ns = NAMESPACES[version]
    rsp = root.find(f"{{*}}Body/{{{ns}}}DeliverRsp")
    assert rsp is not None
    assert rsp.findtext(f"{{{ns}}}MM7Version") == version
    assert rsp.findtext(f"{{{ns}}}Status/{{{ns}}}StatusCode") == "1000"
    assert root.findtext(f"{{*}}Header/{{{ns}}}TransactionID") == "tx-0001"


def test_every_status_answered_is_in_the_mm7_status_table() -> None:
    for code in (
        FORMAT_CORRUPT,
        CONTENT_REFUSED,
        VALIDATION_ERROR,
        ADDRESS_NOT_FOUND,
        SERVER_ERROR,
    ):
        assert code in STATUS_TABLE
        assert STATUS_TEXTS[code] in STATUS_TABLE[code][1]


def test_a_body_over_the_bound_is_refused_before_reading() -> None:
    body, content_type = request()
    assert refused(body, content_type, Bounds(body_bytes=len(body) - 1)) == CONTENT_REFUSED


def test_too_many_parts_are_refused() -> None:
    many = [
        MessagePart(content_id=f"p{n}", content_type="text/plain", filename=f"{n}.txt", data=b"x")
        for n in range(BOUNDS.parts + 1)
    ]
    body, content_type = request(parts=many, mixed=True)
    assert refused(body, content_type) == CONTENT_REFUSED


def test_a_part_over_the_bound_is_refused() -> None:
    body, content_type = request()
    assert refused(body, content_type, Bounds(part_bytes=len(PICTURE) - 1)) == CONTENT_REFUSED


def _nested(depth: int) -> tuple[bytes, str]:
    """A DeliverReq whose MM nests multipart/mixed `depth` times around one text."""
    inner = b"Content-Type: text/plain\r\n\r\nyes"
    for level in range(depth):
        inner = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode()
            + inner
            + f"\r\n--b{level}--".encode()
        )
    body, content_type = request(mixed=True)
    soap = body.split(b"\r\n--", 1)[0]
    outer = content_type.split('boundary="', 1)[1].split('"', 1)[0]
    mm = inner.replace(b"Content-Type:", b"Content-ID: <mm7-content>\r\nContent-Type:", 1)
    return soap + f"\r\n--{outer}\r\n".encode() + mm + f"\r\n--{outer}--\r\n".encode(), content_type


def test_multiparts_nested_too_deep_are_refused() -> None:
    body, content_type = _nested(3)
    assert refused(body, content_type) == CONTENT_REFUSED
    # while one nested multipart (multipart/alternative in a phone's MM) is read
    body, content_type = _nested(1)
    assert parse_deliver_req(body, content_type).first_text == "yes"


def test_thousands_of_nested_multiparts_are_refused_before_the_parser_sees_them() -> None:
    body, content_type = _nested(2000)
    assert refused(body, content_type) == CONTENT_REFUSED


def test_thousands_of_tiny_parts_are_refused_before_the_parser_sees_them() -> None:
    body, content_type = request(mixed=True)
    boundary = body.split(b'multipart/mixed; boundary="', 1)[1].split(b'"', 1)[0]
    flood = b"".join(b"\r\n--" + boundary + b"\r\n\r\nx" for _ in range(100_000))
    at = body.index(b"\r\n--" + boundary + b"--")
    assert refused(body[:at] + flood + body[at:], content_type) == CONTENT_REFUSED


@pytest.mark.parametrize(
    ("damage", "status"),
    [
        (lambda b: b.replace(b"</soap-env:Body>", b""), FORMAT_CORRUPT),  # bad XML
        (lambda b: b.replace(b"<?xml", b'<!DOCTYPE x [<!ENTITY e "e">]><?xml', 1), FORMAT_CORRUPT),
        (lambda b: b.replace(b"cid:mm7-content", b"cid:nowhere"), FORMAT_CORRUPT),
        (lambda b: b.replace(b"<Sender>", b"<Sende>").replace(b"</Sender>", b"</Sende>"),
         VALIDATION_ERROR),
        (lambda b: b.replace(b"<Number>14082257140", b"<Number>not-a-number"), VALIDATION_ERROR),
        (lambda b: b.replace(b"<Recipients>", b"<Recipientz>").replace(b"</Recipients>",
         b"</Recipientz>"), VALIDATION_ERROR),
        (lambda b: b.replace(b">tx-0001<", b"><"), VALIDATION_ERROR),
    ],
    ids=["bad-xml", "dtd", "content-href", "no-sender", "bad-sender", "no-recipients", "no-tid"],
)  # fmt: skip
def test_malformed_requests_get_an_mm7_status(damage: object, status: int) -> None:
    body, content_type = request()
    assert callable(damage)
    assert refused(damage(body), content_type) == status


def test_a_body_that_is_not_mime_is_format_corrupt() -> None:
    body, content_type = request()
    assert refused(b"\x00garbage <DeliverReq>" * 10, content_type) == FORMAT_CORRUPT
    # and the transaction id is found for the answer when the envelope can be seen
    assert sniff_transaction_id(body) == "tx-0001"


def _mo(subject: str, text: str) -> ReceivedDeliver:
    body, content_type = request(subject=subject, parts=parts(text))
    return parse_deliver_req(body, content_type)


@pytest.mark.parametrize(
    ("subject", "text", "keyword"),
    [
        ("", "yes", "yes"),
        ("", "YES! count me in", "yes"),
        ("Join now", "yes", "join"),  # the subject first
        ("Hello there", "yes please", "yes"),  # the subject's word is none: the text's
        ("", "maybe", ""),
        ("", "yesterday", ""),  # a whole word only
    ],
)
def test_the_keyword_is_the_first_word_of_the_subject_or_the_text(
    subject: str, text: str, keyword: str
) -> None:
    assert keyword_of(_mo(subject, text), ["yes", "join"]) == keyword
