"""MMS from a phone on the local runtime, over HTTP: the carrier route answers DeliverRsp
1000, N401 reaches the postback URL signed, and its link downloads the same picture;
STOP from the phone refuses the next send (E114) and START allows it, in both dialects.

The phone is build_deliver_req, the builder the simulated MMSC's phone will use; the
runtime's AWS gate must deny nothing (started_runtime checks it when the module ends).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.request
from collections.abc import Iterator

import pytest
from lxml import etree

from mmsapi.carrier.message import MessagePart
from mmsapi.carrier.mm7_deliver import build_deliver_req
from tests.e2e.runtime import KEY, LocalRuntime, Postback, answer, started_runtime
from tests.media import photo_jpeg

TOKEN = "local-carrier-token-for-e2e-0001"
PICTURE = photo_jpeg(200, 150, seed=11)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with started_runtime(
        tmp_path_factory.mktemp("inbound"),
        env={"MMS_LOCAL_CARRIER_TOKEN": TOKEN},
        unset=("MMS_MM7_URL",),
    ) as started:
        yield started


@pytest.fixture(scope="module")
def demo(runtime: LocalRuntime) -> dict[str, str]:
    account: dict[str, str] = json.loads(runtime.state_file.read_text())["demo_account"]
    done = runtime.run(
        "-m", "mmsapi.admin", "update", account["account_id"], "--inbox-keywords", "yes,stop"
    )
    assert done.returncode == 0, done.stderr
    return account


def phone_replies(runtime: LocalRuntime, text: str, transaction: str) -> bytes:
    parts = [
        MessagePart(content_id="IMG_0001.jpg", content_type="image/jpeg", filename="IMG_0001.jpg",
                    data=PICTURE),
        MessagePart(content_id="text_0.txt", content_type="text/plain; charset=utf-8",
                    filename="text_0.txt", data=text.encode()),
    ]  # fmt: skip
    body, content_type = build_deliver_req(
        sender="+14082257140", recipient="28444", parts=parts, transaction_id=transaction
    )
    request = urllib.request.Request(
        f"{runtime.api_url}/carrier/mm7/{TOKEN}",
        data=body,
        headers={"Content-Type": content_type},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        answer: bytes = response.read()
        return answer


def n401(runtime: LocalRuntime, root: str, tracking: str) -> Postback:
    def found(postback: Postback) -> bool:
        return (
            postback.body.startswith(b"<?xml")
            and f"<{tracking}>MMS_MO_".encode() in (postback.body)
            and etree.fromstring(postback.body).tag == root
        )

    return runtime.postbacks.wait_for(found, timeout=30)


@pytest.mark.parametrize(
    ("dialect", "root", "names"),
    [
        ("current", "postback", ("keyword", "tracking-id", "content/file")),
        ("legacy", "POSTBACK", ("KEYWORD", "TRACKINGID", "CONTENT/FILE")),
    ],
)
def test_a_reply_with_a_picture_and_yes_reaches_the_account(
    runtime: LocalRuntime, demo: dict[str, str], dialect: str, root: str, names: tuple[str, ...]
) -> None:
    # Given the demo account in the dialect under test
    done = runtime.run(
        "-m", "mmsapi.admin", "update", demo["account_id"], "--postback-dialect", dialect
    )
    assert done.returncode == 0, done.stderr
    # When the phone replies with a picture and "yes"
    answer = phone_replies(runtime, "Yes", f"tx-{dialect}")
    # Then the MMSC gets DeliverRsp 1000
    assert b"<StatusCode>1000</StatusCode>" in answer
    assert f"tx-{dialect}".encode() in answer
    # And N401 arrives, signed with the account's secret, with the keyword
    keyword, tracking, file = names
    postback = n401(runtime, root, tracking)
    secret = demo["postback_secret"].encode()
    digest = hmac.new(secret, postback.body, hashlib.sha256).hexdigest()
    assert postback.headers["x-mms-signature"] == f"sha256={digest}"
    document = etree.fromstring(postback.body)
    assert document.findtext(keyword) == "yes"
    # And the picture's link (the second part, after the SMIL) downloads the same bytes
    links = [str(f.text) for f in document.findall(file)]
    assert len(links) == 3
    assert links[1].startswith(f"{runtime.api_url}/v/mo.")
    with urllib.request.urlopen(links[1], timeout=30) as download:  # follows the redirect
        assert download.read() == PICTURE


PHONE = "14082257140"
SEND = {
    "current": (
        "/ep/v1/",
        "<request><action>sendSavedMMS</action><api-key>{key}</api-key><mms-id>{mms_id}</mms-id>"
        f"<to>{PHONE}</to><from>28444</from><service-id>12345</service-id>"
        "<fallback-sms-text>See</fallback-sms-text></request>",
        ("status", "error-code"),
    ),
    "legacy": (
        "/API/wxml/1.3/index.php",
        "<REQUEST><ACTION>sendSavedMMS</ACTION><API_KEY>{key}</API_KEY><MMSID>{mms_id}</MMSID>"
        f"<TO>{PHONE}</TO><FROM>28444</FROM><SERVICEID>12345</SERVICEID>"
        "<FALLBACKSMSTEXT>See</FALLBACKSMSTEXT></REQUEST>",
        ("STATUS", "ERRORCODE"),
    ),
}
SAVE = {
    "current": "<request><action>saveMMS</action><api-key>{key}</api-key><name>n</name>"
    "<message-subject>Hi</message-subject><slide><message-text>one</message-text></slide>"
    "</request>",
    "legacy": "<REQUEST><ACTION>saveMMS</ACTION><API_KEY>{key}</API_KEY><NAME>n</NAME>"
    "<SUBJECT>Hi</SUBJECT><SLIDE><TEXT>one</TEXT></SLIDE></REQUEST>",
}


def send_saved(runtime: LocalRuntime, dialect: str, mms_id: str) -> tuple[str, str]:
    """(status, error code) of a sendSavedMMS to the phone, in the dialect."""
    path, xml, (status, code) = SEND[dialect]
    _, got = answer(runtime.post(path, xml.format(key=KEY, mms_id=mms_id)))
    return got[status], got.get(code, "")


def confirmations(runtime: LocalRuntime) -> dict[str, str]:
    """The texts the simulated SMS gateway sent the phone, by file (a glob's order is
    the directory's, not the order they were sent in)."""
    sent = {p.name: json.loads(p.read_text()) for p in (runtime.data_dir / "sms").glob("*.json")}
    return {name: str(s["text"]) for name, s in sent.items() if s["to"] == PHONE}


@pytest.mark.parametrize("dialect", ["current", "legacy"])
def test_stop_from_the_phone_refuses_the_next_send_and_start_allows_it(
    runtime: LocalRuntime, demo: dict[str, str], dialect: str
) -> None:
    # Given the demo account in the dialect under test, and a saved MMS it sends the phone
    done = runtime.run(
        "-m", "mmsapi.admin", "update", demo["account_id"], "--postback-dialect", dialect
    )
    assert done.returncode == 0, done.stderr
    path = SEND[dialect][0]
    _, saved = answer(runtime.post(path, SAVE[dialect].format(key=KEY)))
    mms_id = saved.get("mms-id" if dialect == "current" else "MMSID")
    assert mms_id, saved
    assert send_saved(runtime, dialect, mms_id)[0] == "Success"
    before = confirmations(runtime)
    # When the phone replies STOP
    assert b"<StatusCode>1000</StatusCode>" in phone_replies(runtime, "STOP", f"tx-stop-{dialect}")
    # Then the next sendSavedMMS to it answers E114
    assert send_saved(runtime, dialect, mms_id) == ("Failure", "E114")
    # And the account is told (N401, keyword stop), and the phone got its confirmation
    keyword = "keyword" if dialect == "current" else "KEYWORD"
    told = runtime.postbacks.wait_for(
        lambda p: f"<{keyword}>stop</{keyword}>".encode() in p.body, timeout=30
    )
    assert etree.fromstring(told.body).tag == ("postback" if dialect == "current" else "POSTBACK")
    new = [text for name, text in confirmations(runtime).items() if name not in before]
    assert any("unsubscribed" in text for text in new), new
    # When the phone replies START, Then sends to it are accepted again
    assert b"<StatusCode>1000</StatusCode>" in phone_replies(runtime, "Start", f"tx-go-{dialect}")
    assert send_saved(runtime, dialect, mms_id)[0] == "Success"
