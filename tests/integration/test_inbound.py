"""MMS from phones (MO) through the carrier route: DeliverRsp, parts stored, N401 delivered.

Each function runs as itself (its role, through the IAM gate): the MMSC's DeliverReq
into ReportFunction, the outbox relay, PostbackFunction to the account's URL, and the
file link into ViewFunction, whose redirect downloads the part.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time
from typing import Any

import boto3
import pytest
import requests
from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from local.aws_gate import acting_as
from local.stack import Stack
from mmsapi.admin.changes import parse_change
from mmsapi.carrier.message import MessagePart
from mmsapi.carrier.mm7 import NAMESPACES, Version
from mmsapi.carrier.mm7_deliver import build_deliver_req
from mmsapi.errors import DomainError
from mmsapi.models import Dialect, Shortcode
from mmsapi.services import mo_links
from mmsapi.services.accounts import create_account, set_postback
from mmsapi.settings import get_settings
from mmsapi.store.outbox import OutboxStore
from tests.conftest import Client
from tests.integration.helpers import bucket_keys, postback_events
from tests.lambda_context import FakeLambdaContext, load_handler_module
from tests.media import photo_jpeg

TOKEN = "carrier-token-for-tests-0001"
PHONE = "14082257140"
PICTURE = photo_jpeg(320, 240)


@pytest.fixture
def inbox(client: Client, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Client:
    """Given the demo account with inbox keywords, its postbacks posted to a recorder."""
    monkeypatch.setenv("MMS_CARRIER_REPORT_TOKEN", TOKEN)
    get_settings.cache_clear()
    set_postback(
        client.ctx.accounts, client.account.account_id, httpserver.url_for("/pb"), new_secret=True
    )
    change = parse_change({"inbox_keywords": "Yes,STOP,join"})
    client.ctx.accounts.change(client.account.account_id, change)
    return client


def reply(
    text: str = "yes", *, to: str = "28444", version: Version = "6.8.0", subject: str = ""
) -> tuple[bytes, str]:
    """A phone's reply: a picture and a text, as the MMSC posts it."""
    parts = [
        MessagePart(content_id="IMG_0001.jpg", content_type="image/jpeg", filename="IMG_0001.jpg",
                    data=PICTURE),
        MessagePart(content_id="text_0.txt", content_type="text/plain; charset=utf-8",
                    filename="text_0.txt", data=text.encode()),
    ]  # fmt: skip
    return build_deliver_req(
        sender=f"+{PHONE}", recipient=to, parts=parts, transaction_id="tx-42",
        linked_id="mo-1", subject=subject, version=version,
    )  # fmt: skip


def post(body: bytes, content_type: str, token: str = TOKEN) -> dict[str, Any]:
    """The MMSC's POST to the carrier route, as API Gateway hands it to ReportFunction."""
    event = {
        "pathParameters": {"channel": "mm7", "token": token},
        "headers": {
            "Content-Type": content_type,
            "Host": "mms.example.com",
            "X-Forwarded-Proto": "https",
            "X-Skycore-Carrier-Id": "31002",
        },
        "requestContext": {"domainName": "mms.example.com"},
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }
    with acting_as("ReportFunction"):
        result: dict[str, Any] = load_handler_module("report").handler(event, FakeLambdaContext())
    return result


def mm7_status(result: dict[str, Any]) -> str:
    root = etree.fromstring(result["body"].encode().split(b"\n", 1)[1])
    rsp = root.find("{*}Body/{*}DeliverRsp")
    assert rsp is not None, result["body"]
    return str(rsp.findtext("{*}Status/{*}StatusCode"))


@pytest.fixture(autouse=True)
def _fresh_postback_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostbackFunction's module makes its stores on import: imported afresh here, with
    this stack's table names (a unit test may have imported it without a stack)."""
    monkeypatch.delitem(sys.modules, "functions_postback_app", raising=False)


def deliver_postbacks(stack: Stack, httpserver: HTTPServer) -> list[tuple[bytes, str]]:
    """Relay the outbox and run PostbackFunction on what reached its queue: the bodies
    and signatures the account's URL received."""
    got: list[tuple[bytes, str]] = []

    def record(request: Request) -> Response:
        got.append((request.get_data(), request.headers.get("X-MMS-Signature", "")))
        return Response("ok")

    httpserver.expect_request("/pb").respond_with_handler(record)
    records = []
    for number, event in enumerate(postback_events(stack)):
        event["detail"]["postback_id"] = event.pop("postback_id")
        records.append({
            "messageId": f"m-{number}", "receiptHandle": f"rh-{number}",
            "body": json.dumps(event), "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1",
        })  # fmt: skip
    with acting_as("PostbackFunction"):
        result = load_handler_module("postback").handler({"Records": records}, FakeLambdaContext())
    assert result == {"batchItemFailures": []}
    return got


def follow(link: str) -> requests.Response:
    """A file link opened as a browser would: ViewFunction's redirect, then the part."""
    token = link.rsplit("/v/", 1)[1]
    event = {"pathParameters": {"token": token}}
    with acting_as("ViewFunction"):
        result = load_handler_module("view").handler(event, FakeLambdaContext())
    assert result["statusCode"] == 302, result
    location = result["headers"]["Location"]
    assert "X-Amz-Credential" not in link
    assert "Signature" not in link
    return requests.get(location, timeout=10)


def view_status(token: str) -> int:
    with acting_as("ViewFunction"):
        result = load_handler_module("view").handler(
            {"pathParameters": {"token": token}}, FakeLambdaContext()
        )
    return int(result["statusCode"])


@pytest.mark.parametrize(
    ("dialect", "version"),
    [(Dialect.CURRENT, "6.8.0"), (Dialect.LEGACY, "5.3.0")],
    ids=["current-6.8.0", "legacy-5.3.0"],
)
def test_a_phone_replies_with_a_picture_and_yes(
    inbox: Client, stack: Stack, httpserver: HTTPServer, dialect: Dialect, version: Version
) -> None:
    # Given an account with the keyword "yes", in the dialect under test
    account_id = inbox.account.account_id
    inbox.ctx.accounts.change(account_id, parse_change({"postback_dialect": dialect.value}))
    # When the phone replies with a picture and the text "yes"
    result = post(*reply("yes", version=version))
    # Then the MMSC gets DeliverRsp 1000, in its own version
    assert result["statusCode"] == 200
    assert mm7_status(result) == "1000"
    assert NAMESPACES[version] in result["body"]
    # And the account gets one N401, signed, with the keyword and one link per part
    [(body, signature)] = deliver_postbacks(stack, httpserver)
    account = inbox.ctx.accounts.get(account_id)
    assert account is not None
    expected = hmac.new(account.postback_secret.encode(), body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    postback = etree.fromstring(body)
    names = (
        ("postback", "origin", "code", "from", "to", "keyword", "tracking-id", "operator-id",
         "message-subject", "content", "file")
        if dialect is Dialect.CURRENT
        else ("POSTBACK", "ORIGIN", "CODE", "FROM", "TO", "KEYWORD", "TRACKINGID", "SPID",
              "SUBJECT", "CONTENT", "FILE")
    )  # fmt: skip
    root, origin, code, sender, to, keyword, tracking, operator, subject, content, file = names
    assert postback.tag == root
    assert postback.findtext(origin) == "MMS_MO"
    assert postback.findtext(code) == "N401"
    assert (postback.findtext(sender), postback.findtext(to)) == (PHONE, "28444")
    assert postback.findtext(keyword) == "yes"  # as the account wrote it: lower case
    assert str(postback.findtext(tracking)).startswith("MMS_MO_")
    assert postback.findtext(operator) == "31002"
    assert postback.findtext(subject) == ""
    links = [str(f.text) for f in postback.findall(f"{content}/{file}")]
    assert len(links) == 3  # the SMIL, the picture, the text
    assert all(link.startswith("https://mms.example.com/v/mo.") for link in links)
    # And the picture's link downloads the same picture bytes, the text's the text
    downloads = [follow(link) for link in links]
    assert downloads[1].status_code == 200
    assert downloads[1].content == PICTURE
    assert downloads[1].headers["Content-Type"] == "image/jpeg"
    assert downloads[2].content == b"yes"
    assert b"cid:IMG_0001.jpg" in downloads[0].content


def test_the_subject_and_no_keyword_are_told_as_they_are(
    inbox: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    result = post(*reply("what time do you open?", subject="Question"))
    assert mm7_status(result) == "1000"
    [(body, _)] = deliver_postbacks(stack, httpserver)
    postback = etree.fromstring(body)
    assert postback.findtext("keyword") == ""
    assert postback.findtext("message-subject") == "Question"


def test_an_unknown_shortcode_is_address_not_found_and_nothing_is_stored(
    inbox: Client, stack: Stack
) -> None:
    result = post(*reply(to="99999"))
    assert (result["statusCode"], mm7_status(result)) == (200, "2003")
    assert [k for k in bucket_keys(stack) if k.startswith("mo/")] == []
    assert postback_events(stack) == []


@pytest.mark.parametrize(
    ("damage", "status"),
    [
        (lambda b: b.replace(b"</soap-env:Body>", b""), "2007"),
        (lambda b: b.replace(b"<Sender>", b"<Sende>").replace(b"</Sender>", b"</Sende>"), "4004"),
        (lambda b: b + b"\r\n" + b"x" * 4_000_000, "2004"),
    ],
    ids=["bad-xml", "no-sender", "oversized"],
)
def test_a_malformed_deliver_req_gets_an_mm7_error_and_nothing_is_stored(
    inbox: Client, stack: Stack, damage: Any, status: str
) -> None:
    body, content_type = reply()
    result = post(damage(body), content_type)
    assert (result["statusCode"], mm7_status(result)) == (200, status)
    assert "tx-42" in result["body"]  # answered to its transaction
    assert [k for k in bucket_keys(stack) if k.startswith("mo/")] == []
    assert postback_events(stack) == []


def test_a_postback_that_cannot_be_written_removes_the_parts_and_asks_again(
    inbox: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an outbox that refuses writes
    def refuse(_self: OutboxStore, _postback: object) -> None:
        raise DomainError("postback write failed: throttled")

    monkeypatch.setattr(OutboxStore, "put", refuse)
    # When a reply comes, Then the MMSC is asked to send it again (HTTP 500, 3000)
    result = post(*reply())
    assert (result["statusCode"], mm7_status(result)) == (500, "3000")
    # And the parts stored before the failure are gone
    assert [k for k in bucket_keys(stack) if k.startswith("mo/")] == []


def test_a_wrong_token_is_forbidden_and_stores_nothing(inbox: Client, stack: Stack) -> None:
    assert post(*reply(), token="wrong-token-wrong-token-00")["statusCode"] == 403
    assert bucket_keys(stack) == []


def test_links_with_a_wrong_secret_or_past_their_days_do_not_download(
    inbox: Client, stack: Stack, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert mm7_status(post(*reply())) == "1000"
    [(body, _)] = deliver_postbacks(stack, httpserver)
    link = str(etree.fromstring(body).findtext("content/file"))
    token = link.rsplit("/v/", 1)[1]
    prefix, secret = token.rsplit(".", 1)
    assert view_status(f"{prefix}.{'x' * len(secret)}") == 404
    assert view_status(f"{prefix[:-1]}9.{secret}") == 404  # another part number
    assert view_status("mo.Li4vLi4.x.1.y") == 404  # '../..' as the account
    assert view_status(token) == 302
    # After LINK_DAYS the link answers 410
    later = time.time() + mo_links.LINK_DAYS * 86_400 + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert view_status(token) == 410


def test_the_shortcode_routes_to_the_account_that_holds_it_now(inbox: Client, stack: Stack) -> None:
    # Given a second account that is given 28555, then 28444 moved to it
    other, _ = create_account(
        inbox.ctx.accounts, "other", shortcodes=[Shortcode(code="28555")], service_id="1"
    )
    assert mm7_status(post(*reply(to="28555"))) == "1000"
    events = postback_events(stack)
    assert [e["detail"]["account_id"] for e in events] == [other.account_id]
    change = parse_change({"remove_shortcode": ["28444"]})
    inbox.ctx.accounts.change(inbox.account.account_id, change)
    # When a reply to 28444 comes, Then no account holds it any more
    assert mm7_status(post(*reply())) == "2003"
    inbox.ctx.accounts.change(other.account_id, parse_change({"add_shortcode": ["28444:US"]}))
    assert mm7_status(post(*reply())) == "1000"
    assert [e["detail"]["account_id"] for e in postback_events(stack)] == [other.account_id]


def test_a_deliver_req_sent_again_is_the_same_message(
    inbox: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given a reply the MMSC sends twice (it never got our first DeliverRsp)
    body, content_type = reply("yes")
    assert mm7_status(post(body, content_type)) == "1000"
    # When the same DeliverReq comes again
    assert mm7_status(post(body, content_type)) == "1000"
    told = [etree.fromstring(b) for b, _ in deliver_postbacks(stack, httpserver)]
    # Then it is the same message: one tracking-id, the same links, the parts stored once
    # (a postback told again carries the same X-MMS-Postback-Id: docs/postbacks.md)
    assert len({t.findtext("tracking-id") for t in told}) == 1
    assert len({tuple(f.text for f in t.iter("file")) for t in told}) == 1
    listed = boto3.client("s3").list_objects_v2(Bucket=stack.physical["MediaBucket"], Prefix="mo/")
    assert listed["KeyCount"] == 3
    assert follow(str(told[0].findall("content/file")[1].text)).content == PICTURE
    # And another reply from the same phone is another message
    assert mm7_status(post(*reply("join"))) == "1000"
    listed = boto3.client("s3").list_objects_v2(Bucket=stack.physical["MediaBucket"], Prefix="mo/")
    assert listed["KeyCount"] == 6


def mo_keys(stack: Stack) -> list[str]:
    return sorted(k for k in bucket_keys(stack) if k.startswith("mo/"))


def text_reply(charset: str) -> tuple[bytes, str]:
    part = MessagePart(
        content_id="t.txt", content_type=f"text/plain; charset={charset}", filename="t.txt",
        data=b"yes \xff",
    )  # fmt: skip
    return build_deliver_req(
        sender=f"+{PHONE}", recipient="28444", parts=[part], transaction_id="tx-9"
    )


def test_a_text_in_a_charset_that_cannot_replace_is_received(
    inbox: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given a text labelled idna (its decoder raises on errors='replace')
    result = post(*text_reply("idna"))
    # Then it is received as UTF-8: DeliverRsp 1000 and an N401 with its keyword
    assert (result["statusCode"], mm7_status(result)) == (200, "1000")
    [(body, _)] = deliver_postbacks(stack, httpserver)
    assert etree.fromstring(body).findtext("keyword") == "yes"


def test_any_failure_after_reading_is_answered_3000_and_removes_what_was_written(
    inbox: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an outbox write that fails with something that is not a DomainError
    def broken(_self: OutboxStore, _postback: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(OutboxStore, "put", broken)
    # When a reply comes, Then the MMSC is asked to send it again, and nothing stays
    result = post(*reply())
    assert (result["statusCode"], mm7_status(result)) == (500, "3000")
    assert mo_keys(stack) == []


def test_a_storage_failure_finding_the_account_is_answered_3000(
    inbox: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_args: object) -> None:
        raise DomainError("shortcode read failed: throttled")

    monkeypatch.setattr("mmsapi.services.inbound.account_by_shortcode", unavailable)
    result = post(*reply())
    assert (result["statusCode"], mm7_status(result)) == (500, "3000")
    assert mo_keys(stack) == []


def test_a_resend_whose_postback_fails_keeps_the_first_delivery_s_parts(
    inbox: Client, stack: Stack, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a reply stored and told (N401 delivered with its links)
    req = reply()
    assert mm7_status(post(*req)) == "1000"
    [(first, _)] = deliver_postbacks(stack, httpserver)
    stored = mo_keys(stack)
    assert len(stored) == 3
    # When the MMSC sends it again (our answer was lost) and the outbox write fails
    with monkeypatch.context() as patch:

        def refuse(_self: OutboxStore, _postback: object) -> None:
            raise DomainError("postback write failed: throttled")

        patch.setattr(OutboxStore, "put", refuse)
        assert mm7_status(post(*req)) == "3000"
    # Then the first delivery's parts are still there and its links download
    assert mo_keys(stack) == stored
    links = [str(f.text) for f in etree.fromstring(first).iter("file")]
    assert follow(links[1]).content == PICTURE
    # And a third sending succeeds: the same N401 (same postback id) is put again
    assert mm7_status(post(*req)) == "1000"
    [event] = postback_events(stack)
    assert event["postback_id"].startswith("mo-")
    assert event["detail"]["fields"]["content"] == links
    assert mo_keys(stack) == stored


def test_a_resend_after_a_secret_rotation_keeps_the_first_links_working(
    inbox: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given a reply stored and told
    req = reply()
    assert mm7_status(post(*req)) == "1000"
    [first] = postback_events(stack)
    links = first["detail"]["fields"]["content"]
    # When the account's postback secret is rotated, then the MMSC sends the reply again
    account_id = inbox.account.account_id
    set_postback(inbox.ctx.accounts, account_id, httpserver.url_for("/pb"), new_secret=True)
    assert mm7_status(post(*req)) == "1000"
    # Then the parts are not rewritten: the first N401's links still download
    [again] = postback_events(stack)
    assert again["postback_id"] == first["postback_id"]
    assert mo_keys(stack) == sorted(
        f"mo/{account_id}/{link.rsplit('.', 3)[1]}/{n}" for n, link in enumerate(links, 1)
    )
    assert all(view_status(link.rsplit("/v/", 1)[1]) == 302 for link in links)
    assert follow(links[1]).content == PICTURE


def test_a_deliver_req_whose_soap_part_is_not_first_is_answered_as_one(
    inbox: Client, stack: Stack
) -> None:
    # Given a DeliverReq whose SOAP part comes after a 70 KB part (past any sniffing)
    body, content_type = reply()
    outer = content_type.split('boundary="', 1)[1].split('"', 1)[0].encode()
    mark = b"--" + outer
    head, soap_part, mm_part, tail = body.split(mark)
    filler = b"\r\nContent-Type: application/octet-stream\r\n\r\n" + b"f" * 70_000 + b"\r\n"
    late = head + mark + filler + mark + mm_part + mark + soap_part + mark + tail
    # Then it is received (it was taken for a delivery report: HTTP 400)
    result = post(late, content_type)
    assert (result["statusCode"], mm7_status(result)) == (200, "1000")
    assert len(mo_keys(stack)) == 3


# The fuzz tests' generous CPU bound (tests/integration/test_fuzz.py): the scan makes
# the worst request allowed cost a fraction of it, where 20,000 Content-Type parameters
# cost 7 s and 80,000 parts behind boundary*0= 13.7 s before the scan.
CPU_BOUND_SECONDS = 2.0


def _leafy(headers: bytes, data: bytes, copies: int, declaration: bytes) -> tuple[bytes, str]:
    """A reply whose MM is `copies` leaves with `headers`, under `declaration`."""
    body, content_type = reply()
    outer = content_type.split('boundary="', 1)[1].split('"', 1)[0].encode()
    mark = b"--" + outer
    head, soap_part, _mm, tail = body.split(mark)
    leaves = (b"--zz\r\n" + headers + b"\r\n\r\n" + data + b"\r\n") * copies
    mm = b"\r\nContent-ID: <mm7-content>\r\nContent-Type: multipart/mixed; " + declaration
    mm += b"\r\n\r\n" + leaves + b"--zz--\r\n"
    return head + mark + soap_part + mark + mm + mark + tail, content_type


@pytest.mark.parametrize(
    ("headers", "data", "copies", "declaration", "status"),
    [
        # the worst allowed: 30 parts, each a 2 KB Content-Type of 20 parameters
        (b"Content-Type: text/plain; " + b"; ".join(b"p%d=v" % n for n in range(20))
         + b"a" * 1850, b"x", 30, b'boundary="zz"', "2003"),
        # just refused: one parameter more; a 2 KB line more; the review's probes
        (b"Content-Type: text/plain; " + b"; ".join(b"p%d=v" % n for n in range(21)),
         b"x", 30, b'boundary="zz"', "2004"),
        (b"Content-Type: text/plain; " + b"; ".join(b"p%d=v" % n for n in range(20_000)),
         b"x", 1, b'boundary="zz"', "2004"),
        (b"Content-Type: text/plain", b"x", 80_000, b'boundary*0="zz"', "2004"),
        (b"Content-Type: text/plain", b"x", 80_000, b"boundary*=us-ascii''zz", "2004"),
    ],
    ids=["worst-allowed", "one-param-more", "20000-params", "2231-parts", "2231-charset-parts"],
)  # fmt: skip
def test_hostile_headers_cost_bounded_cpu_through_the_route(
    inbox: Client, stack: Stack, headers: bytes, data: bytes, copies: int, declaration: bytes,
    status: str,
) -> None:  # fmt: skip
    body, content_type = _leafy(headers, data, copies, declaration)
    body = body.replace(b"<ShortCode>28444<", b"<ShortCode>99999<")  # no account: no writes
    start = time.thread_time()
    result = post(body, content_type)
    cpu = time.thread_time() - start
    assert mm7_status(result) == status
    assert cpu < CPU_BOUND_SECONDS, f"{cpu:.2f} s of CPU"
    print(f"{len(body)} bytes, {status}: {cpu:.3f} s CPU")


def test_a_hostile_body_that_is_no_deliver_req_is_bounded_too(inbox: Client) -> None:
    # Given a body naming no DeliverReq, with 20,000 Content-Type parameters (7 s to parse)
    body, content_type = _leafy(
        b"Content-Type: text/plain; " + b"; ".join(b"p%d=v" % n for n in range(20_000)),
        b"x", 1, b'boundary="zz"',
    )  # fmt: skip
    body = body.replace(b"DeliverReq", b"SomethingReq")
    start = time.thread_time()
    result = post(body, content_type)
    # Then it is refused as no delivery report, unparsed
    assert result["statusCode"] == 400
    assert time.thread_time() - start < CPU_BOUND_SECONDS
