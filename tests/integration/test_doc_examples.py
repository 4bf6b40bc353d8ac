"""The requests of the README and of docs/actions.md, run as written against the API.

Only what a reader cannot copy is replaced: the media server's address (the examples'
hosts are the README's local server and media.example.com) and the mms-id of a
template that exists. Each answer has the shape the docs show for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from lxml import etree
from pytest_httpserver import HTTPServer

from local.stack import Stack
from mmsapi.models import Dialect
from mmsapi.services.deliver import deliver
from mmsapi.tracking import parse_tracking_id
from mmsapi.xml.dialect import canonical, written
from tests.conftest import Client
from tests.integration.conftest import Carrier
from tests.integration.helpers import postback_events
from tests.media import photo_jpeg, tone_wav

ROOT: Final = Path(__file__).resolve().parents[2]
VCARD: Final = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bill Smith\r\nEND:VCARD\r\n"
_FENCE: Final = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_MARKED: Final = re.compile(r"<!-- answer: (\S+) (\S+) -->\n```xml\n(.*?)^```", re.M | re.S)
_MEDIA_HOSTS: Final = re.compile(r"https?://(?:127\.0\.0\.1:8000|media\.example\.com)/")


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def readme_requests() -> dict[str, str]:
    """action -> the document the README sends with curl."""
    sent = [m for b in blocks(read("README.md"), "sh") for m in re.findall(r"-d '(.*?)'", b, re.S)]
    return {str(etree.fromstring(x.encode()).findtext("action")): x for x in sent}


def doc_requests() -> dict[str, str]:
    """action -> the request example of docs/actions.md."""
    found = {}
    for block in blocks(read("docs/actions.md"), "xml"):
        root = etree.fromstring(block.encode())
        if root.tag == "request":
            found[str(root.findtext("action"))] = block
    return found


def documented_answers() -> dict[tuple[str, Dialect], etree._Element]:
    return {
        (action, Dialect(dialect)): etree.fromstring(xml.encode())
        for action, dialect, xml in _MARKED.findall(read("docs/answers.md"))
    }


def outline(element: etree._Element) -> list[object]:
    """The element names, nested, with repeats of one element collapsed (a listing of
    several templates has the outline of a listing of one)."""
    shape: list[object] = []
    for child in element:
        entry = (child.tag, outline(child))
        if not shape or shape[-1] != entry:
            shape.append(entry)
    return shape


def as_legacy(xml: str) -> str:
    """The same request in the legacy dialect: <REQUEST> and every name as it writes it
    (merge tag names under <data> stay as they are)."""
    root = etree.fromstring(xml.encode())

    def rename(element: etree._Element, free: bool) -> None:
        if not free:
            element.tag = written(canonical(str(element.tag)), Dialect.LEGACY)
        for child in element:
            rename(child, free or canonical(str(element.tag)) == "data")

    rename(root, False)
    root.tag = "REQUEST"
    return etree.tostring(root, encoding="unicode")


def serve_media(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/1.jpg").respond_with_data(photo_jpeg(), content_type="image/jpeg")
    httpserver.expect_request("/1.mp3").respond_with_data(tone_wav(), content_type="audio/mpeg")
    httpserver.expect_request("/2.vcf").respond_with_data(VCARD, content_type="text/vcard")


def run(client: Client, httpserver: HTTPServer, xml: str, mms_id: int | None = None) -> bytes:
    body = _MEDIA_HOSTS.sub(httpserver.url_for("/"), xml)
    if mms_id is not None:
        body = re.sub(r"(<mms-id>|<MMSID>)\d+", rf"\g<1>{mms_id}", body)
    return client.post(body)


def success(answer: bytes) -> etree._Element:
    root = etree.fromstring(answer)
    assert root[0].text == "Success", answer
    return root


def test_the_readme_examples_work_as_written(
    client: Client, carrier: Carrier, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given the README's media server, serving its picture
    serve_media(httpserver)
    readme = readme_requests()
    shown = [etree.fromstring(x.encode()) for x in blocks(read("README.md"), "xml")]
    # When its saveMMS is sent, then its sendMMS
    saved = success(run(client, httpserver, readme["saveMMS"]))
    sent = success(run(client, httpserver, readme["sendMMS"]))
    # Then both answer as the README shows
    assert outline(saved) == outline(shown[0])
    assert outline(sent) == outline(shown[1])
    # And the sent message reaches the carrier, told by postback N101
    send_id = parse_tracking_id(str(sent.findtext("tracking-id")))
    assert send_id is not None
    assert deliver(client.ctx, send_id) == "sent as MMS"
    codes = [e["detail"]["code"] for e in postback_events(stack)]
    assert "N101" in codes, codes
    # And the saved template is ready to send (its N003 was told)
    assert "N003" in codes, codes


def test_the_action_examples_answer_as_documented(client: Client, httpserver: HTTPServer) -> None:
    # Given the media of the examples, and a ready template (the README's)
    serve_media(httpserver)
    ready = int(
        success(run(client, httpserver, readme_requests()["saveMMS"])).findtext("mms-id") or 0
    )
    requests = doc_requests()
    answers = documented_answers()
    assert set(requests) == {action for action, _ in answers}
    for dialect in Dialect:
        saved: int | None = None
        for action in ("saveMMS", "sendSavedMMS", "sendMMS", "getMMSTemplates", "deleteMMSID"):
            xml = requests[action] if dialect is Dialect.CURRENT else as_legacy(requests[action])
            # When each example is sent (sendSavedMMS with the ready template; deleteMMSID
            # with the template the saveMMS example made)
            mms_id = {"sendSavedMMS": ready, "deleteMMSID": saved}.get(action)
            got = success(run(client, httpserver, xml, mms_id))
            if action == "saveMMS":
                saved = int(got.findtext(written("mms-id", dialect)) or 0)
            # Then its answer has the shape docs/answers.md shows, in the request's dialect
            assert outline(got) == outline(answers[(action, dialect)]), (action, dialect)
