"""The local inbox's pages and data (local/inbox*.py) and the phone's parts (local/phone.py):
hostile content is shown as text, slides follow the SMIL, signatures are checked as a
receiver checks them, and the phone refuses what a phone cannot send."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from local.http_api import HttpAnswer, HttpRequest
from local.inbox import Inbox, ranged
from local.inbox_page import linked, phones_page, postbacks_page
from local.inbox_store import (
    PostbackBox,
    ReceivedMms,
    signature_status,
    slides_of,
    sms_newest,
)
from local.phone import MAX_PICTURE_BYTES, PhoneError, mo_parts, sms_mo_event
from local.phone import main as phone_main
from mmsapi.carrier.message import MessagePart, OutgoingMessage, SlidePlan
from mmsapi.carrier.mm7 import ReceivedSubmit, build_submit_req
from mmsapi.models import Account
from mmsapi.services.postback import handle_event
from mmsapi.settings import Settings
from tests.media import photo_jpeg

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&amp;"
SECRET = "postback-secret-for-tests"


def part(content_id: str, content_type: str, data: bytes) -> MessagePart:
    return MessagePart(content_id=content_id, content_type=content_type, filename=content_id,
                       data=data)  # fmt: skip


def submit(parts: list[MessagePart], smil: str, **given: str) -> ReceivedSubmit:
    fields: dict[str, Any] = {
              "transaction_id": "mmsapi-42", "version": "6.8.0", "vasp_id": "", "vas_id": "",
              "recipients": ["+14044790000"], "sender": "28444", "subject": "Hi",
              "service_code": "", "linked_id": None, "delivery_report": True, "smil": smil,
              "parts": parts}  # fmt: skip
    fields.update(given)
    return ReceivedSubmit(**fields)


SMIL = (
    '<smil><body><par dur="5000ms"><text src="cid:b.txt"/></par>'
    '<par dur="3s"><img src="cid:a.jpg"/><audio src="cid:c.amr"/></par></body></smil>'
)


def mms(**given: str) -> ReceivedMms:
    parts = [
        part("a.jpg", "image/jpeg", b"\xff\xd8\xff"),
        part("b.txt", "text/plain; charset=utf-8", given.pop("text", "hello").encode()),
        part("c.amr", "audio/amr", b"#!AMR\n"),
        part("d.svg", "image/svg+xml", b"<svg onload=alert(3)/>"),
    ]
    received = submit(parts, SMIL, **given)
    return ReceivedMms("1700000000000001", 1_700_000_000.0, received, slides_of(received))


def parsed(page: bytes) -> etree._Element:
    root: etree._Element = etree.fromstring(page, etree.HTMLParser())
    return root


def text_at(root: etree._Element, path: str) -> str:
    """The text content of what `path` finds (an XPath)."""
    return str(root.xpath(f"string({path})"))


def texts_at(root: etree._Element, path: str) -> list[str]:
    found = root.xpath(path)
    assert isinstance(found, list)
    return [str(e.xpath("string()")) for e in found if isinstance(e, etree._Element)]


# ---------------------------------------------------------------- slides


def test_slides_follow_the_smil_and_unnamed_parts_come_last() -> None:
    # Given a message whose SMIL names text, then picture and audio, and not the SVG
    slides = mms().slides
    # Then the slides are in SMIL order, each object its part, the SVG an attachment
    assert [[(i.kind, i.index) for i in s.items] for s in slides] == [
        [("text", 1)],
        [("image", 0), ("audio", 2)],
        [("image", 3)],
    ]
    assert [s.duration_ms for s in slides] == [5000, 3000, None]
    assert slides[0].items[0].text == "hello"


def test_a_message_with_a_broken_smil_still_shows_every_part() -> None:
    received = submit([part("a.txt", "text/plain", b"x")], "<smil><body><par")
    assert [[i.index for i in s.items] for s in slides_of(received)] == [[0]]


def test_tracking_id_and_ddm_come_from_the_transaction_id() -> None:
    assert mms().send_id == 42
    assert not mms().is_ddm
    ddm = mms(transaction_id="mmsapi-ddm-7")
    assert (ddm.send_id, ddm.is_ddm) == (7, True)
    assert mms(transaction_id="someone-else").tracking_id is None


# ---------------------------------------------------------------- escaping


def test_hostile_message_content_is_shown_as_text() -> None:
    # Given an MMS whose subject, sender and text are markup, and an SMS whose text is
    message = mms(subject=HOSTILE, sender=HOSTILE, text=HOSTILE)
    sms = {"message_id": HOSTILE, "to": "14044790000", "from": HOSTILE, "text": HOSTILE,
           "received_at": 1_700_000_001.0}  # fmt: skip
    # When the phones page is rendered
    page = phones_page([message], [sms], 50)
    root = parsed(page)
    # Then no element and no attribute came from the content
    assert root.xpath("//script[not(@src)]") == []
    assert root.xpath("//*[@onerror or @onload]") == []
    assert [i.get("src") for i in root.iter("img")] == [
        "/_inbox/mms/1700000000000001/part/0"
    ]  # the JPEG only: the SVG is a download link, never inline
    # And the content reads as it was sent
    assert texts_at(root, "//p[@class='text']") == [HOSTILE, HOSTILE]
    assert HOSTILE in text_at(root, "//article[@class='mms']/h3")


def test_hostile_postback_body_and_account_are_shown_as_text(tmp_path: Path) -> None:
    box = PostbackBox(tmp_path)
    body = f"<postback><code>N401</code><tracking-id>{HOSTILE}</tracking-id></postback>"
    box.record(HOSTILE, body.encode(), "id", "valid")  # not XML: fields stay empty
    root = parsed(postbacks_page(box.newest(), "http://127.0.0.1:3000/_inbox/receive/", 50))
    assert root.xpath("//script[not(@src)]") == []
    assert root.xpath("//*[@onerror]") == []
    assert text_at(root, "//pre") == body
    assert HOSTILE in text_at(root, "//tr[@class='postback']/td[2]")


def test_only_http_links_are_made_links() -> None:
    shown = linked('see http://127.0.0.1:3000/v/1.abc and javascript:alert(1) "x"')
    root = parsed(f"<p>{shown}</p>".encode())
    assert [a.get("href") for a in root.iter("a")] == ["http://127.0.0.1:3000/v/1.abc"]
    assert "&quot;x&quot;" in shown


# ---------------------------------------------------------------- postbacks and signatures


def test_signature_is_checked_as_a_receiver_checks_it() -> None:
    body = b"<postback><code>N401</code></postback>"
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert signature_status(body, good, SECRET) == "valid"
    assert signature_status(body + b" ", good, SECRET) == "invalid"
    assert signature_status(body, good, "another secret") == "invalid"
    assert signature_status(body, None, SECRET) == "unsigned"
    assert signature_status(body, good, None) == "unknown account"


def inbox(tmp_path: Path, secret: str | None = SECRET) -> Inbox:
    return Inbox(tmp_path, port=3000, carrier_url="http://127.0.0.1:1/none", shortcode="28444",
                 secret_of=lambda _: secret, timeline=lambda _: None)  # fmt: skip


def request(method: str, path: str, body: bytes = b"", **headers: str) -> HttpRequest:
    given = [("Host", "127.0.0.1:3000"), *((k.replace("_", "-"), v) for k, v in headers.items())]
    return HttpRequest(method, path, given, body, "127.0.0.1", "HTTP/1.1")


def test_received_postbacks_are_kept_newest_first_with_their_signature(tmp_path: Path) -> None:
    # Given the inbox receiving two postbacks for an account, the second badly signed
    box = inbox(tmp_path)
    first = b"<postback><code>N101</code><tracking-id>TVNH</tracking-id></postback>"
    second = b"<POSTBACK><CODE>N401</CODE><TRACKINGID>TU1T</TRACKINGID></POSTBACK>"
    signed = "sha256=" + hmac.new(SECRET.encode(), first, hashlib.sha256).hexdigest()
    for body, signature in ((first, signed), (second, "sha256=00")):
        answer = box.handle(request("POST", "/_inbox/receive/acct1", body,
                                    X_MMS_Signature=signature))  # fmt: skip
        assert answer.status == 200
    # Then both are listed, newest first, with their status and tracking-ids (both dialects)
    kept = box.postbacks.newest()
    assert [(p.code.upper(), p.tracking, p.signature) for p in kept] == [
        ("N401", "TU1T", "invalid"),
        ("N101", "TVNH", "valid"),
    ]


def test_inbox_refuses_other_hosts_and_other_origins(tmp_path: Path) -> None:
    box = inbox(tmp_path)
    rebound = HttpRequest("GET", "/_inbox/", [("Host", "evil.example:3000")], b"", "127.0.0.1",
                          "HTTP/1.1")  # fmt: skip
    assert box.handle(rebound).status == 421
    posted = request("POST", "/_inbox/phone", b"text=x", Origin="http://evil.example")
    assert box.handle(posted).status == 403
    assert box.handle(request("GET", "/_inbox/")).status == 200


def test_every_page_forbids_inline_script(tmp_path: Path) -> None:
    answer = inbox(tmp_path).handle(request("GET", "/_inbox/postbacks"))
    headers = dict(answer.headers)
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def keep_submission(data_dir: Path, message_id: str, parts: list[MessagePart]) -> None:
    """What the simulated MMSC keeps of a SubmitReq: mmsc/<id>/submit.txt."""
    slides = [SlidePlan(text=parts[0].content_id, objects=[p.content_id for p in parts[1:]])]
    body, content_type = build_submit_req(
        OutgoingMessage(subject=HOSTILE, slides=slides, parts=parts),
        recipient="14044790000", sender="28444", vasp_id="v", vas_id="v", service_code="1",
        transaction_id="mmsapi-9",
    )  # fmt: skip
    directory = data_dir / "mmsc" / message_id
    directory.mkdir(parents=True)
    (directory / "submit.txt").write_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)


def test_kept_submissions_are_read_again_and_odd_parts_are_downloads(tmp_path: Path) -> None:
    # Given a SubmitReq kept by the MMSC, with a text, a JPEG and an SVG part
    parts = [
        part("t.txt", "text/plain; charset=utf-8", b"hello"),
        part("p.jpg", "image/jpeg", photo_jpeg(40, 30)),
        part("s.svg", "image/svg+xml", b"<svg onload=alert(3)/>"),
    ]
    keep_submission(tmp_path, "1700000000000002", parts)
    box = inbox(tmp_path)
    # When the inbox lists it and its parts are asked for
    (listed,) = box.mmsc.newest()
    answers = [box.handle(request("GET", f"/_inbox/mms/1700000000000002/part/{n}"))
               for n in (1, 2, 9)]  # fmt: skip
    # Then it is the message sent, and its tracking-id is the send's
    assert (listed.submit.subject, listed.send_id) == (HOSTILE, 9)
    assert [i.kind for s in listed.slides for i in s.items] == ["text", "image", "image"]
    # And the JPEG is an image, the SVG an attachment no browser renders, part 9 none
    jpeg, svg, missing = answers
    assert dict(jpeg.headers)["Content-Type"] == "image/jpeg"
    assert jpeg.body == parts[1].data
    assert dict(svg.headers)["Content-Type"] == "application/octet-stream"
    assert dict(svg.headers)["Content-Disposition"].startswith("attachment")
    assert missing.status == 404
    # And a path that is not a message id finds nothing
    assert box.mmsc.get("../../etc") is None
    assert box.handle(request("GET", "/_inbox/mms/..%2F..%2Fetc/part/0")).status == 404


def test_sms_are_read_newest_first(tmp_path: Path) -> None:
    folder = tmp_path / "sms"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps({"to": "1", "text": "first"}))
    (folder / "b.json").write_text("not json")
    assert [s["text"] for s in sms_newest(tmp_path)] == ["first"]


# ---------------------------------------------------------------- the phone


def test_phone_sends_the_picture_then_the_text() -> None:
    parts = mo_parts("yes", photo_jpeg(40, 30))
    assert [(p.content_type, p.content_id) for p in parts] == [
        ("image/jpeg", "IMG_0001.jpg"),
        ("text/plain; charset=utf-8", "text_0.txt"),
    ]
    assert mo_parts("")[0].data == b""  # an empty MMS still has a part


@pytest.mark.parametrize(
    ("text", "picture", "error"),
    [
        ("x", b"<svg/>", "not a JPEG, PNG or GIF"),
        ("x", b"\xff\xd8\xff" + b"0" * MAX_PICTURE_BYTES, "larger than"),
        ("x" * 5001, None, "longer than"),
    ],
)
def test_phone_refuses_what_a_phone_cannot_send(
    text: str, picture: bytes | None, error: str
) -> None:
    with pytest.raises(PhoneError, match=re.escape(error)):
        mo_parts(text, picture)


def test_phone_sms_is_the_two_way_sms_message_in_an_sns_record() -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:SmsInboundTopic"
    event = sms_mo_event(topic, sender="14082257140", recipient="28444", text="STOP")
    (record,) = event["Records"]
    assert record["EventSource"] == "aws:sns"
    assert record["Sns"]["TopicArn"] == topic
    message = json.loads(record["Sns"]["Message"])
    assert message["originationNumber"] == "+14082257140"
    assert (message["destinationNumber"], message["messageBody"]) == ("28444", "STOP")
    assert message["inboundMessageId"]
    with pytest.raises(PhoneError, match="longer than"):
        sms_mo_event(topic, sender="1", recipient="2", text="x" * 1601)


def test_phone_command_without_a_runtime_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no runtime.json in the data dir
    monkeypatch.setenv("MMS_LOCAL_DATA_DIR", str(tmp_path))
    # When the phone command is run, for an MMS and for an SMS
    codes = [phone_main(["--text", "yes"]), phone_main(["--text", "yes", "--sms"])]
    # Then it fails with a message naming the runtime, and nothing is sent
    assert codes == [2, 2]
    assert capsys.readouterr().err.count("the local runtime is not running") == 2


def test_postbacks_of_an_account_without_a_url_go_to_the_local_inbox(httpserver: Any) -> None:
    # Given the local runtime's inbox setting and an account without a postback URL
    httpserver.expect_request("/_inbox/receive/acct9", method="POST").respond_with_data("ok")
    settings = Settings(
        allow_loopback_media=True, local_postback_inbox=httpserver.url_for("/_inbox/receive/")
    )
    account = Account(account_id="acct9", name="n", key_hash="0" * 64, postback_url="",
                      postback_secret=SECRET)  # fmt: skip
    event = {"id": "e1", "detail": {"code": "N003", "account_id": "acct9",
                                    "fields": {"mms-id": "7"}}}  # fmt: skip
    # When its postback is handled, Then it reaches the inbox, signed
    handle_event(event, FakeAccounts(account), settings)
    (request, _), *_ = httpserver.log
    body = request.get_data()
    assert signature_status(body, request.headers["X-MMS-Signature"], SECRET) == "valid"
    # And without the setting (AWS: the template never sets it) it is dropped
    handle_event(event, FakeAccounts(account), Settings(allow_loopback_media=True))
    assert len(httpserver.log) == 1


class FakeAccounts:
    def __init__(self, *accounts: Account) -> None:
        self.accounts = {a.account_id: a for a in accounts}

    def get(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)


@pytest.mark.parametrize(
    ("asked", "status", "body", "content_range"),
    [
        ("bytes=0-", 206, b"0123456789", "bytes 0-9/10"),
        ("bytes=2-4", 206, b"234", "bytes 2-4/10"),
        ("bytes=8-99", 206, b"89", "bytes 8-9/10"),
        ("bytes=-3", 206, b"789", "bytes 7-9/10"),
        ("bytes=10-", 416, b"", "bytes */10"),
        ("bytes=0-1,4-5", 200, b"0123456789", None),  # several ranges: the whole
        ("", 200, b"0123456789", None),
    ],
)
def test_media_answers_byte_ranges_as_players_ask(
    asked: str, status: int, body: bytes, content_range: str | None
) -> None:
    whole = HttpAnswer(200, [("Content-Type", "video/webm")], b"0123456789")
    answer = ranged(whole, asked)
    assert (answer.status, answer.body) == (status, body)
    assert dict(answer.headers).get("Content-Range") == content_range


def test_the_inbox_keeps_the_newest_postbacks_only(tmp_path: Path) -> None:
    box = PostbackBox(tmp_path)
    for number in range(5):
        box.record("a", f"<postback><code>N{number}</code></postback>".encode(), "", "valid")
    box.prune(keep=2)
    assert [p.code for p in box.newest()] == ["N4", "N3"]
