"""MM7 DeliverReq (an MMS from a phone): read in both versions, answered, and bounded.

The requests are made by build_deliver_req, the builder the simulated MMSC's phone uses;
the hostile ones are such requests broken on purpose, or written by hand.
"""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime

import pytest
from lxml import etree

from mmsapi.carrier import mm7
from mmsapi.carrier.message import MessagePart
from mmsapi.carrier.mm7 import (
    NAMESPACES,
    STATUS_TABLE,
    MMStatus,
    Version,
    build_delivery_report_req,
)
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
    is_deliver_req,
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


# ---- hostile headers: bounded before the MIME parser reads them ---------------------


def _with_leaf(headers: bytes, data: bytes = b"yes", inner: bytes = b"") -> tuple[bytes, str]:
    """A DeliverReq whose MM is multipart/mixed (boundary zz, or `inner`'s declaration)
    holding `data` with `headers`."""
    body, content_type = request(mixed=True)
    soap = body.split(b"\r\n--", 1)[0]
    outer = content_type.split('boundary="', 1)[1].split('"', 1)[0].encode()
    mm = (
        b"Content-ID: <mm7-content>\r\nContent-Type: "
        + (inner or b'multipart/mixed; boundary="zz"')
        + b"\r\n\r\n--zz\r\n"
        + headers
        + b"\r\n\r\n"
        + data
        + b"\r\n--zz--"
    )
    return soap + b"\r\n--" + outer + b"\r\n" + mm + b"\r\n--" + outer + b"--\r\n", content_type


def _filled(prefix: bytes, unit: bytes, size: int, sep: bytes = b" ") -> bytes:
    """`prefix` and `unit`s up to `size` bytes."""
    count = (size - len(prefix)) // (len(sep) + len(unit))
    return prefix + (sep + unit) * count


_PARAMS = b"Content-Type: text/plain; charset=utf-8; " + b"; ".join(
    b"p%d=v" % n for n in range(BOUNDS.header_params - 1)
)
_LINE_BYTES = BOUNDS.header_line_bytes
# Each the worst a bound allows (as long, as many parameters, words, comments as can be).
WORST_ALLOWED: dict[str, bytes] = {
    "params": _filled(_PARAMS, b"a", _LINE_BYTES, b""),
    "comments": _PARAMS + b" (c)" * BOUNDS.header_params,
    "encoded-words": b"Content-Type: text/plain\r\nContent-ID: "
    + b"=?utf-8?q?a?=" * ((_LINE_BYTES - 12) // 13),
    "quoted": b'Content-Type: text/plain; name="' + b"\\a" * ((_LINE_BYTES - 40) // 2) + b'"',
    "words": _filled(b"Content-Type: text/plain;", b"x", _LINE_BYTES)[
        : len(b"Content-Type: text/plain;") + 2 * (BOUNDS.header_words - 2)
    ],
}
# Each one step over a bound.
JUST_REFUSED: dict[str, bytes] = {
    "params": _PARAMS + b"; p=v; q=v",
    "line": b"Content-Type: text/plain; name=" + b"a" * _LINE_BYTES,
    "folded-line": b"Content-Type: text/plain; name=" + b"a\r\n a" * (_LINE_BYTES // 2),
    "block": b"Content-Type: text/plain\r\n"
    + b"\r\n".join(b"X-H%d: v" % n for n in range(BOUNDS.header_block_bytes // 8)),
    "words": b"Content-Type: text/plain; name=" + b" x" * BOUNDS.header_words,
    "comments": b"Content-Type: text/plain " + b"(" * 1000 + b")" * 1000,
    "encoded-words": b"Content-Type: text/plain\r\nContent-ID: " + b"=?utf-8?q?a?= " * 150,
    "message": b"Content-Type: message/rfc822",
    "message-comment": b"Content-Type: message (x) /rfc822",
    "digest": b"Content-Type: multipart/digest; boundary=yy",
    "boundary-2231": b"Content-Type: multipart/mixed; boundary*0=yy",
    "boundary-2231-charset": b"Content-Type: multipart/mixed; boundary*=us-ascii''yy",
}


@pytest.fixture
def header_parser_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every header value Python's (superlinear) header parser is given."""
    given: list[str] = []
    fetch = email.policy.EmailPolicy.header_fetch_parse

    def recording(self: email.policy.EmailPolicy, name: str, value: str) -> object:
        given.append(value)
        return fetch(self, name, value)

    monkeypatch.setattr(email.policy.EmailPolicy, "header_fetch_parse", recording)
    return given


@pytest.mark.parametrize("name", sorted(JUST_REFUSED))
def test_headers_over_a_bound_are_refused_before_the_mime_parser_runs(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a header one step over a bound, and a MIME parser that must not run
    def never(*_args: object) -> None:
        raise AssertionError("the MIME parser ran")

    monkeypatch.setattr(mm7, "_mime", never)
    body, content_type = _with_leaf(JUST_REFUSED[name])
    # Then it is refused (2004) by the scan alone
    assert refused(body, content_type) == CONTENT_REFUSED


@pytest.mark.parametrize("name", sorted(WORST_ALLOWED))
def test_the_worst_headers_allowed_are_read_and_the_parser_sees_only_bounded_values(
    name: str, header_parser_calls: list[str]
) -> None:
    # Given the worst header a bound allows, in each of the most parts allowed
    headers = WORST_ALLOWED[name]
    leaf = b"--zz\r\n" + headers + b"\r\n\r\nyes\r\n"
    count = min(BOUNDS.parts, (BOUNDS.header_bytes - 1000) // (len(headers) + 4)) - 1
    body, content_type = _with_leaf(headers)
    at = body.index(b"--zz\r\n")
    body = body[:at] + leaf * count + body[at:]
    # When it is read, Then every part is there
    assert len(parse_deliver_req(body, content_type).parts) == count + 1
    # And the header parser was given only values within the bounds, a bounded number
    # of times: its work is bounded whatever its cost per byte
    assert max(len(v) for v in header_parser_calls) <= BOUNDS.header_line_bytes
    assert max(v.count(";") for v in header_parser_calls) <= BOUNDS.header_params
    # (each value is parsed again on each look-up: 8 to 10 times a part in practice)
    assert len(header_parser_calls) <= 10 * (BOUNDS.parts + BOUNDS.multiparts)
    assert sum(map(len, header_parser_calls)) <= 10 * BOUNDS.header_bytes


@pytest.mark.parametrize("declaration", [b'boundary*0="zz"', b"boundary*=us-ascii''zz"])
def test_a_flood_of_parts_behind_an_rfc_2231_boundary_is_refused(declaration: bytes) -> None:
    # Given 80,000 parts under a boundary _BOUNDARY cannot see (the review's probe)
    inner = b"multipart/mixed; " + declaration
    flood = b"x\r\n--zz\r\nContent-Type: text/plain\r\n\r\n" * 80_000
    body, content_type = _with_leaf(b"Content-Type: text/plain", flood + b"x", inner)
    assert refused(body, content_type) == CONTENT_REFUSED


def test_lines_starting_with_two_dashes_are_bounded_whatever_the_boundaries() -> None:
    # Given a text whose lines start with "--" (no declared boundary): allowed up to the bound
    allowed = b"\r\n".join(b"-- line" for _ in range(BOUNDS.dash_lines - 10))
    body, content_type = _with_leaf(b"Content-Type: text/plain", allowed)
    assert parse_deliver_req(body, content_type).parts[0].data.count(b"-- line") == len(
        allowed.split(b"\r\n")
    )
    flood = b"\n".join(b"--" for _ in range(BOUNDS.dash_lines))
    body, content_type = _with_leaf(b"Content-Type: text/plain", flood)
    assert refused(body, content_type) == CONTENT_REFUSED


@pytest.mark.parametrize("charset", ["idna", "punycode", "undefined", "base64", "rot13", "nope"])
def test_a_text_in_a_charset_that_cannot_replace_is_read_as_utf_8(charset: str) -> None:
    # Given a text part labelled with a codec that raises on errors='replace', or no text codec
    headers = f"Content-Type: text/plain; charset={charset}".encode()
    body, content_type = _with_leaf(headers, b"\xffyes please")
    # When it is read, Then its text is UTF-8 with what cannot be read replaced
    mo = parse_deliver_req(body, content_type)
    assert mo.parts[0].content_type == "text/plain; charset=utf-8"
    assert mo.first_text == "\ufffdyes please"
    assert keyword_of(mo, ["yes"]) == ""  # "\ufffdyes" is not "yes"


def _soap_after(filler_bytes: int) -> tuple[bytes, str]:
    """A DeliverReq whose SOAP part comes after the MM and a filler part."""
    body, content_type = request()
    outer = content_type.split('boundary="', 1)[1].split('"', 1)[0].encode()
    head, soap_part, mm_part, tail = body.split(b"--" + outer)
    filler = b"\r\nContent-Type: application/octet-stream\r\n\r\n" + b"f" * filler_bytes + b"\r\n"
    mark = b"--" + outer
    return head + mark + filler + mark + mm_part + mark + soap_part + mark + tail, content_type


def test_a_deliver_req_whose_soap_part_starts_late_is_still_a_deliver_req() -> None:
    body, content_type = _soap_after(70_000)
    assert not looks_like_deliver_req(body)  # the cheap sniff misses it
    assert is_deliver_req(body, content_type)
    assert parse_deliver_req(body, content_type).first_text == "yes"
    # while a delivery report is not one
    report, report_type = build_delivery_report_req(
        transaction_id="tx-1", message_id="m-1", recipient="+14082257140", sender="28444",
        mm_status=MMStatus.RETRIEVED, date=datetime.now(UTC),
    )  # fmt: skip
    assert not is_deliver_req(report, report_type)
