"""The hosted page of a send: what the fallback SMS link shows."""

from __future__ import annotations

from datetime import timedelta

from lxml import html
from pytest_httpserver import HTTPServer

from mmsapi.models import Send
from mmsapi.services.view import render_view, view_link
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.helpers import answer
from tests.lambda_context import FakeLambdaContext, load_handler_module
from tests.media import VCARD, photo_jpeg

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def sent(client: Client, httpserver: HTTPServer) -> Send:
    httpserver.expect_request("/p.jpg").respond_with_data(photo_jpeg(), content_type="image/jpeg")
    httpserver.expect_request("/c.vcf").respond_with_data(VCARD, content_type="text/vcard")
    httpserver.expect_request("/d.pdf").respond_with_data(PDF, content_type="application/pdf")
    got = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>page</name>"
            "<message-subject>Hello {$firstname|friend} 🎉</message-subject>"
            f"<slide><image><url>{httpserver.url_for('/p.jpg')}</url></image>"
            "<message-text>Line one\nfor {$firstname|you} &lt;b&gt;not bold&lt;/b&gt;"
            "</message-text></slide>"
            f"<slide><vcard><url>{httpserver.url_for('/c.vcf')}</url></vcard></slide>"
            f"<slide><pdf><url>{httpserver.url_for('/d.pdf')}</url></pdf>"
            "<message-text>original</message-text></slide></request>"
        )
    )
    sent = answer(
        client.post(
            f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
            f"<mms-id>{got['mms-id']}</mms-id><to>14044790000</to><from>28444</from>"
            "<service-id>12345</service-id><fallback-sms-text>see</fallback-sms-text>"
            "<custom-text><value>custom three</value><slide>3</slide></custom-text>"
            "<data><FirstName>Ann</FirstName></data></request>"
        )
    )
    send = client.ctx.sends.get(parse_tracking_id(sent["tracking-id"]) or 0)
    assert send is not None
    return send


def test_page_shows_the_slides_in_order_personalised(
    client: Client, httpserver: HTTPServer
) -> None:
    # Given a send with merge data and a custom text on slide 3
    send = sent(client, httpserver)
    token = view_link(send).rsplit("/", 1)[1]
    # When its page is rendered
    page = render_view(client.ctx, token)
    # Then it shows the personalised subject and every slide in order
    assert page.status == 200
    doc = html.fromstring(page.html)
    assert doc.findtext(".//h1") == "Hello Ann"
    slides = doc.findall(".//section")
    assert [s.get("id") for s in slides] == ["slide-1", "slide-2", "slide-3"]
    assert slides[0].find("img") is not None
    assert slides[0].findtext("p") == "Line one\nfor Ann <b>not bold</b>"  # escaped, not markup
    assert slides[1].findtext("a") == "Save contact"
    assert slides[2].findtext("a") == "Open PDF"
    assert slides[2].findtext("p") == "custom three"
    # And media comes from short-lived presigned URLs, objects as downloads
    assert "X-Amz-Expires=3600" in str(slides[0].xpath("string(img/@src)"))
    assert "attachment" in str(slides[1].xpath("string(a/@href)"))


def test_wrong_secret_unknown_send_and_garbage_are_404(
    client: Client, httpserver: HTTPServer
) -> None:
    send = sent(client, httpserver)
    for token in (f"{send.send_id}.wrong", f"999999.{send.view_secret}", "../../etc", ""):
        assert render_view(client.ctx, token).status == 404


def test_expired_link_and_deleted_template_are_410(client: Client, httpserver: HTTPServer) -> None:
    send = sent(client, httpserver)
    token = f"{send.send_id}.{send.view_secret}"
    send.created_at -= timedelta(days=366)
    client.ctx.sends.save(send)
    assert render_view(client.ctx, token).status == 410
    send.created_at += timedelta(days=366)
    client.ctx.sends.save(send)
    client.post(
        f"<request><action>deleteMMSID</action><api-key>{client.api_key}</api-key>"
        f"<mms-id>{send.mms_id}</mms-id></request>"
    )
    assert render_view(client.ctx, token).status == 410


def test_handler_serves_html_with_a_strict_policy(client: Client, httpserver: HTTPServer) -> None:
    send = sent(client, httpserver)
    event = {
        "version": "2.0",
        "rawPath": f"/v/{send.send_id}.{send.view_secret}",
        "pathParameters": {"token": f"{send.send_id}.{send.view_secret}"},
        "requestContext": {"http": {"method": "GET", "sourceIp": "198.51.100.1"}},
    }
    result = load_handler_module("view").handler(event, FakeLambdaContext())
    assert result["statusCode"] == 200
    assert result["headers"]["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in result["headers"]["Content-Security-Policy"]
    assert result["body"].startswith("<!doctype html>")
