"""MMS from a phone on the local runtime, over HTTP: the carrier route answers DeliverRsp
1000, N401 reaches the postback URL signed, and its link downloads the same picture.

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
from tests.e2e.runtime import LocalRuntime, Postback, started_runtime
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
