"""saveMMS through the front door against the emulated AWS, media served locally."""

from __future__ import annotations

import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from local.stack import Stack
from mmsapi.media.types import MediaKind
from mmsapi.models import TemplateStatus
from mmsapi.services.accounts import set_enabled
from mmsapi.settings import get_settings
from tests.conftest import Client
from tests.integration.helpers import answer, bucket_keys, postback_events
from tests.media import VCARD, animated_gif, photo_jpeg, tone_wav


def save_xml(slides: str, *, extra: str = "", key: str = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ") -> str:
    return (
        f"<request><action>saveMMS</action><api-key>{key}</api-key>"
        f"<message-subject>The subject</message-subject><name>FuelTheFire</name>{extra}"
        f"{slides}</request>"
    )


def serve(httpserver: HTTPServer, path: str, data: bytes, content_type: str) -> str:
    httpserver.expect_request(path).respond_with_data(data, content_type=content_type)
    return httpserver.url_for(path)


def test_text_only_template_is_ready_and_announces_n003(client: Client, stack: Stack) -> None:
    # Given a saveMMS with one text slide and a client reference
    xml = save_xml(
        "<slide><message-text>Hello {$firstname|customer}</message-text></slide>",
        extra="<client-reference>order-77</client-reference>",
    )
    # When it is posted
    got = answer(client.post(xml))
    # Then it succeeds with an mms-id, the template is ready with its merge tag
    assert got["status"] == "Success", got
    mms_id = int(got["mms-id"])
    template = client.ctx.templates.get(mms_id)
    assert template is not None
    assert template.status is TemplateStatus.READY
    assert template.merge_tags == ["firstname"]
    assert template.slides[0].duration == 10
    # And N003 with the client reference is on its way to the postback URL
    events = postback_events(stack)
    assert [e["detail"]["code"] for e in events] == ["N003"]
    assert events[0]["detail"]["fields"] == {"mms-id": str(mms_id), "client-reference": "order-77"}


def test_seed_example_with_image_audio_and_vcard(
    client: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given the 000 example's media on a local server
    image = serve(httpserver, "/images/1.jpg", photo_jpeg(1200, 900), "image/jpeg")
    audio = serve(httpserver, "/audio/1.wav", tone_wav(), "audio/x-wav")
    vcard = serve(httpserver, "/2.vcf", VCARD, "text/x-vcard")
    xml = save_xml(
        f"<slide><image><url>{image}?utm=1</url></image><audio><url>{audio}</url></audio>"
        "<message-text>Here is some text</message-text><duration>5</duration></slide>"
        f"<slide><message-text>My Contact</message-text><vcard><url>{vcard}</url></vcard>"
        "<duration>10</duration></slide>"
    )
    # When it is saved
    got = answer(client.post(xml))
    # Then it is stored, locked for encoding (audio), with original and adapted image in S3
    assert got["status"] == "Success", got
    template = client.ctx.templates.get(int(got["mms-id"]))
    assert template is not None
    assert template.status is TemplateStatus.ENCODING
    image_media = template.slides[0].media_of(MediaKind.IMAGE)
    assert image_media is not None
    assert image_media.rendition_key is not None
    assert image_media.source_url == image  # query string stripped
    keys = bucket_keys(stack)
    assert image_media.original_key in keys
    assert image_media.rendition_key in keys
    assert template.size_bytes == sum(
        (
            m.original_bytes + (m.rendition_bytes or 0)
            if m.rendition_key != m.original_key
            else m.original_bytes
        )
        for s in template.slides
        for m in s.media
    )
    # And no N003 yet: the postback waits for the encoding
    assert postback_events(stack) == []


def test_legacy_dialect_gets_an_uppercase_answer(client: Client) -> None:
    xml = (
        "<REQUEST><ACTION>saveMMS</ACTION><API_KEY>qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ</API_KEY>"
        "<SUBJECT>The subject</SUBJECT><NAME>The name</NAME>"
        "<FALLBACKSMSTEXT>Fallback</FALLBACKSMSTEXT>"
        "<SLIDE><TEXT>Here is some text\rHere is some more text</TEXT></SLIDE></REQUEST>"
    )
    got = answer(client.post(xml))
    assert got["STATUS"] == "Success"
    assert int(got["MMSID"]) > 0


def test_animated_gif_keeps_its_frames(client: Client, httpserver: HTTPServer) -> None:
    url = serve(httpserver, "/a.gif", animated_gif(), "image/gif")
    got = answer(client.post(save_xml(f"<slide><image><url>{url}</url></image></slide>")))
    assert got["status"] == "Success", got
    template = client.ctx.templates.get(int(got["mms-id"]))
    assert template is not None
    assert template.slides[0].media[0].frames == 6


@pytest.mark.parametrize(
    ("key", "code"),
    [("wrong-key-000000000000000000000000", "E104"), ("", "E104")],
)
def test_wrong_or_missing_key_is_e104(client: Client, key: str, code: str) -> None:
    got = answer(client.post(save_xml("<slide><message-text>x</message-text></slide>", key=key)))
    assert (got["status"], got["error-code"]) == ("Failure", code)
    assert got["error-info"] == "Authentication failed, Invalid API-key."


def test_disabled_account_is_e105(client: Client) -> None:
    set_enabled(client.ctx.accounts, client.account.account_id, False)
    got = answer(client.post(save_xml("<slide><message-text>x</message-text></slide>")))
    assert got["error-code"] == "E105"


def test_address_outside_the_allow_list_is_e112(client: Client) -> None:
    client.account.ip_allowlist = ["198.51.100.0/24"]
    client.ctx.accounts.put(client.account)
    got = answer(client.post(save_xml("<slide><message-text>x</message-text></slide>")))
    assert got["error-code"] == "E112"
    client.source_ip = "198.51.100.7"
    assert (
        answer(client.post(save_xml("<slide><message-text>x</message-text></slide>")))["status"]
        == "Success"
    )


def test_action_not_allowed_or_unknown_is_e107(client: Client) -> None:
    client.account.allowed_actions = ["getMMSTemplates"]
    client.ctx.accounts.put(client.account)
    got = answer(client.post(save_xml("<slide><message-text>x</message-text></slide>")))
    assert got["error-code"] == "E107"
    unknown = answer(
        client.post(
            f"<request><action>launchRocket</action><api-key>{client.api_key}</api-key></request>"
        )
    )
    assert unknown["error-code"] == "E107"


@pytest.mark.parametrize(
    ("path", "data", "content_type", "element", "code"),
    [
        ("/broken.jpg", b"\xff\xd8\xff\xe0 this is not a jpeg", "image/jpeg", "image", "E341"),
        ("/film.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4", "image", "E229"),
        ("/blob", b"GIF89a", "application/octet-stream", "image", "E629"),
        ("/page.html", b"<html></html>", "text/html", "image", "E629"),
        ("/card.vcf", b"%PDF-1.4 not a card", "application/octet-stream", "vcard", "E229"),
    ],
)
def test_bad_media_gets_its_code_and_leaves_nothing_behind(
    client: Client,
    stack: Stack,
    httpserver: HTTPServer,
    path: str,
    data: bytes,
    content_type: str,
    element: str,
    code: str,
) -> None:
    # Given a first slide with a good image and a second slide with bad media
    good = serve(httpserver, "/good.jpg", photo_jpeg(200, 150), "image/jpeg")
    bad = serve(httpserver, path, data, content_type)
    xml = save_xml(
        f"<slide><image><url>{good}</url></image></slide>"
        f"<slide><{element}><url>{bad}</url></{element}></slide>"
    )
    # When it is saved
    got = answer(client.post(xml))
    # Then it fails with the code, and no file or template is left
    assert (got["status"], got["error-code"]) == ("Failure", code), got
    assert bucket_keys(stack) == []
    total, _ = client.ctx.templates.page(client.account.account_id, None, 1, 10)
    assert total == 0
    assert postback_events(stack) == []


def test_missing_file_is_could_not_copy_with_slide_number(
    client: Client, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/gone.jpg").respond_with_data("no", status=404)
    xml = save_xml(
        "<slide><message-text>one</message-text></slide>"
        f"<slide><image><url>{httpserver.url_for('/gone.jpg')}</url></image></slide>"
    )
    got = answer(client.post(xml))
    assert got["error-code"] == "E351"
    assert got["error-info"].startswith("Could not copy Image file in slide 2.")


def test_image_over_the_account_cap_is_e331(client: Client, httpserver: HTTPServer) -> None:
    client.account.limits.max_bytes[MediaKind.IMAGE] = 1000
    client.ctx.accounts.put(client.account)
    url = serve(httpserver, "/big.jpg", photo_jpeg(300, 300), "image/jpeg")
    got = answer(client.post(save_xml(f"<slide><image><url>{url}</url></image></slide>")))
    assert got["error-code"] == "E331"


def test_private_network_media_url_is_refused(client: Client) -> None:
    xml = save_xml(
        "<slide><image><url>http://169.254.169.254/latest/meta-data/x.jpg</url></image></slide>"
    )
    got = answer(client.post(xml))
    assert got["error-code"] == "E351"
    assert "169.254.169.254" in got["error-info"]


def test_rule_errors_come_before_any_fetch(client: Client, httpserver: HTTPServer) -> None:
    url = serve(httpserver, "/x.jpg", photo_jpeg(100, 100), "image/jpeg")
    xml = save_xml(f"<slide><image><url>{url}</url></image><video><url>{url}</url></video></slide>")
    got = answer(client.post(xml))
    assert got["error-code"] == "E227"
    assert httpserver.log == []


def test_garbage_gets_a_failure_answer_not_an_exception(client: Client) -> None:
    assert answer(client.post(b"\x00\x01\x02<<<"))["error-code"] in {"E100", "E108"}
    assert (
        answer(client.post(b"<request><action>saveMMS</action></request>"))["error-code"] == "E104"
    )
    assert answer(client.post(b"<request><api-key>k</api-key></request>"))["error-code"] == "E100"


def test_a_slow_media_server_cannot_hold_the_request(
    client: Client, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a request deadline of one second and a media server that takes three
    monkeypatch.setenv("MMS_FETCH_TOTAL_TIMEOUT", "1")
    get_settings.cache_clear()

    def slow(_request: Request) -> Response:
        time.sleep(3)
        return Response(photo_jpeg(64, 64), content_type="image/jpeg")

    httpserver.expect_request("/slow.jpg").respond_with_handler(slow)
    xml = save_xml(f"<slide><image><url>{httpserver.url_for('/slow.jpg')}</url></image></slide>")
    # When it is saved
    started = time.monotonic()
    got = answer(client.post(xml))
    # Then the answer is E351 long before the server would have answered
    assert got["error-code"] == "E351"
    assert time.monotonic() - started < 2.5
