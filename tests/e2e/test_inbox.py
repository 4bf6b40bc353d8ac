"""The local MMS inbox (/_inbox/) and the simulated phone, on the local runtime, in Chromium.

One runtime serves the module, with no MMS_LOCAL_POSTBACK_URL: the demo account's
postbacks go to the inbox. A template with an image, an audio and a video slide is
saved and sent; the inbox shows it under its recipient with its slides, the picture
loaded and the audio and video playable (WebM previews of the 3GP/AMR the MMSC got).
A reply from the phone simulator produces N401, listed with a valid signature.
The Chromium fixture is test_sending's (Debian's chromium and chromium-driver).
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.runtime import KEY, LocalRuntime, answer, started_runtime
from tests.e2e.test_sending import chromium  # noqa: F401 - the shared browser fixture
from tests.media import photo_jpeg
from tests.media_av import make_media

TOKEN = "local-carrier-token-for-inbox-01"
NUMBER = "14044791234"
PHONE_NUMBER = "14082257140"
HOSTILE = "<img src=x onerror=\"document.title='owned'\"> & \"quotes\" 'too'"
WAIT = 60.0  # encoding audio and video, then sending, on a shared 2-core machine


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    media = tmp_path_factory.mktemp("inbox-media")
    with started_runtime(
        tmp_path_factory.mktemp("inbox"),
        env={"MMS_LOCAL_CARRIER_TOKEN": TOKEN, "MMS_LOCAL_POSTBACK_URL": ""},
        unset=("MMS_MM7_URL", "MMS_LOCAL_MMSC_RULES", "MMS_LOCAL_SMS_FAIL"),
    ) as started:
        web = started.web
        web.expect_request("/p.jpg").respond_with_data(
            photo_jpeg(320, 240), content_type="image/jpeg"
        )
        for name, content_type in (("tone.mp3", "audio/mpeg"), ("h264_aac.mp4", "video/mp4")):
            data = make_media(media, name).read_bytes()
            web.expect_request(f"/{name}").respond_with_data(data, content_type=content_type)
        yield started


def get(runtime: LocalRuntime, path: str) -> str:
    with urllib.request.urlopen(runtime.api_url + path, timeout=30) as response:
        text: str = response.read().decode("utf-8")
        return text


def wait_for_text(runtime: LocalRuntime, path: str, pattern: str) -> str:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        page = get(runtime, path)
        if re.search(pattern, page):
            return page
        time.sleep(0.5)
    raise AssertionError(f"{pattern!r} not on {path} within {WAIT} s:\n{runtime.text()[-4000:]}")


def phone(runtime: LocalRuntime, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{runtime.api_url}/_inbox/api/phone",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def keep(driver: WebDriver, name: str) -> None:
    """MMS_E2E_SCREENSHOT_DIR=/some/dir keeps a screenshot of the page for a person."""
    directory = os.environ.get("MMS_E2E_SCREENSHOT_DIR")
    if directory:
        assert driver.save_screenshot(str(Path(directory) / name))


def loaded_or_failed(media: WebElement) -> Callable[[WebDriver], bool]:
    """A wait's condition: the audio or video element has its metadata, or an error."""

    def done(driver: WebDriver) -> bool:
        script = "return arguments[0].readyState >= 1 || arguments[0].error !== null"
        return bool(driver.execute_script(script, media))

    return done


@pytest.fixture(scope="module")
def sent(runtime: LocalRuntime) -> dict[str, str]:
    """Given a three-slide template (picture, audio, video) saved, encoded and sent."""
    url = runtime.web.url_for
    save = f"""<request><action>saveMMS</action><api-key>{KEY}</api-key>
        <message-subject>Inbox test</message-subject><name>inbox</name>
        <fallback-sms-text>See it</fallback-sms-text>
        <slide><image><url>{url("/p.jpg")}</url></image><message-text>{escape(HOSTILE)}</message-text></slide>
        <slide><audio><url>{url("/tone.mp3")}</url></audio><message-text>Two</message-text></slide>
        <slide><video><url>{url("/h264_aac.mp4")}</url></video><message-text>Three</message-text>
        </slide></request>"""
    _, saved = answer(runtime.post("/ep/v1/", save))
    assert saved["status"] == "Success", saved
    wait_for_text(runtime, "/_inbox/postbacks", r'data-code="N003"')
    send = f"""<request><action>sendSavedMMS</action><api-key>{KEY}</api-key>
        <mms-id>{saved["mms-id"]}</mms-id><to>{NUMBER}</to><from>28444</from>
        <service-id>12345</service-id></request>"""
    _root, got = answer(runtime.post("/ep/v1/", send))
    assert got["status"] == "Success", got
    wait_for_text(runtime, "/_inbox/", rf'data-tracking-id="{re.escape(got["tracking-id"])}"')
    return got


@pytest.mark.e2e
def test_sent_mms_is_shown_under_its_recipient_and_its_media_plays(
    runtime: LocalRuntime,
    sent: dict[str, str],
    chromium: WebDriver,  # noqa: F811
) -> None:
    # Given the MMS the simulated MMSC received
    # When the inbox is opened in Chromium
    chromium.get(f"{runtime.api_url}/_inbox/")
    phone_section = chromium.find_element(By.CSS_SELECTOR, f'section[data-number="{NUMBER}"]')
    article = phone_section.find_element(
        By.CSS_SELECTOR, f'article.mms[data-tracking-id="{sent["tracking-id"]}"]'
    )
    # Then it shows the three slides in SMIL order, each with its text
    slides = article.find_elements(By.CSS_SELECTOR, "section.slide")
    assert [s.find_element(By.CSS_SELECTOR, "p.text").text for s in slides] == [
        HOSTILE,
        "Two",
        "Three",
    ]
    # (the hostile text of slide 1 stayed text: no element was made of it, no script ran)
    assert chromium.find_elements(By.CSS_SELECTOR, 'img[src="x"]') == []
    assert chromium.title == "Local MMS inbox"
    # And the picture is loaded
    (image,) = slides[0].find_elements(By.TAG_NAME, "img")
    WebDriverWait(chromium, 20).until(
        lambda d: d.execute_script("return arguments[0].complete", image)
    )
    assert chromium.execute_script("return arguments[0].naturalWidth", image) > 0
    # And the audio and the video load (converted to WebM on first request) and can play
    for slide, tag in ((slides[1], "audio"), (slides[2], "video")):
        (media,) = slide.find_elements(By.TAG_NAME, tag)
        WebDriverWait(chromium, 60).until(loaded_or_failed(media))
        state = chromium.execute_script(
            "const m = arguments[0];"
            " return [m.readyState, m.duration, m.error && m.error.code, m.currentSrc]",
            media,
        )
        assert state[2] is None, state
        assert state[0] >= 1, state
        assert state[1] > 0, state
        assert "/preview/" in state[3]
    keep(chromium, "inbox-phones.png")
    # And the tracking-id links to the send's timeline, which tells it was sent as MMS
    article.find_element(By.PARTIAL_LINK_TEXT, "tracking-id").click()
    timeline = chromium.find_element(By.CSS_SELECTOR, "pre.timeline").text
    assert sent["tracking-id"] in timeline
    assert "sent as MMS" in timeline, timeline


@pytest.mark.e2e
def test_a_reply_from_the_phone_gives_n401_with_a_valid_signature(
    runtime: LocalRuntime,
    chromium: WebDriver,  # noqa: F811
) -> None:
    # Given the phone simulator's HTTP endpoint
    picture = photo_jpeg(120, 90, seed=3)
    # When the phone replies with a picture, a text and a hostile subject
    status, reply = phone(
        runtime,
        {"from": PHONE_NUMBER, "to": "28444", "text": "yes", "subject": HOSTILE,
         "picture_base64": base64.b64encode(picture).decode()},
    )  # fmt: skip
    # Then the carrier route answered DeliverRsp 1000
    assert (status, reply["status_code"]) == (200, 1000), reply
    # And the inbox's postbacks list N401 with a valid signature
    wait_for_text(runtime, "/_inbox/postbacks", r'data-code="N401" data-signature="valid"')
    chromium.get(f"{runtime.api_url}/_inbox/postbacks")
    row = chromium.find_element(By.CSS_SELECTOR, 'tr.postback[data-code="N401"]')
    assert row.get_attribute("data-signature") == "valid"
    assert row.find_element(By.CSS_SELECTOR, "td.signature").text == "valid"
    # And its body is shown as sent (the subject XML-escaped in it), as text:
    # no element was made of the hostile subject, no script ran
    body = str(row.find_element(By.TAG_NAME, "pre").get_attribute("textContent"))
    assert "MMS_MO_" in body
    assert escape(HOSTILE) in body, body
    # And its file links are links; the picture's (after the SMIL) downloads the same bytes
    links = [a.get_attribute("href") for a in row.find_elements(By.CSS_SELECTOR, "pre a")]
    assert len(links) == 3, links
    with urllib.request.urlopen(str(links[1]), timeout=30) as download:
        assert download.read() == picture
    assert chromium.find_elements(By.CSS_SELECTOR, 'img[src="x"]') == []
    assert chromium.title == "Postbacks"
    keep(chromium, "inbox-postbacks.png")


@pytest.mark.e2e
def test_the_phone_form_sends_an_mo(
    runtime: LocalRuntime,
    chromium: WebDriver,  # noqa: F811
) -> None:
    # Given the phone's form in the inbox
    chromium.get(f"{runtime.api_url}/_inbox/phone")
    # When a text-only MMS is sent from it
    chromium.find_element(By.NAME, "text").send_keys("yes")
    chromium.find_element(By.NAME, "subject").send_keys("hello from the form")
    chromium.find_element(By.CSS_SELECTOR, "form.phone-form button").click()
    # Then the page tells the carrier route's answer: DeliverRsp 1000
    result = (
        WebDriverWait(chromium, 30)
        .until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.result"))[0]
        .text
    )
    assert "MM7 status 1000" in result, result
    wait_for_text(runtime, "/_inbox/postbacks", r"hello from the form")


@pytest.mark.e2e
def test_phone_command_sends_an_mo(runtime: LocalRuntime, tmp_path: Path) -> None:
    # Given a picture file and the running runtime (found through its runtime.json)
    picture = tmp_path / "reply.png"
    picture.write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    ))  # fmt: skip
    # When `python -m local phone` sends it with a text
    done = runtime.run("-m", "local", "phone", "--text", "yes", "--subject", "from the command",
                       "--picture", str(picture))  # fmt: skip
    # Then it prints DeliverRsp 1000 and N401 reaches the inbox
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MM7 status 1000" in done.stdout
    wait_for_text(runtime, "/_inbox/postbacks", r"from the command")


@pytest.mark.e2e
def test_inbox_refuses_other_hosts_and_cross_site_posts(runtime: LocalRuntime) -> None:
    # Given the inbox
    # When a page of another site posts to the phone, or a rebound name asks for it
    cross = urllib.request.Request(
        f"{runtime.api_url}/_inbox/phone",
        data=b"text=x",
        headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
        method="POST",
    )
    rebound = urllib.request.Request(f"{runtime.api_url}/_inbox/", headers={"Host": "evil.example"})
    # Then both are refused
    for request, code in ((cross, 403), (rebound, 421)):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == code


@pytest.mark.e2e
def test_an_sms_from_the_phone_gives_n402_with_a_valid_signature(runtime: LocalRuntime) -> None:
    # Given the phone simulator, whose SMS the runtime hands to the two-way SMS topic's function
    # When the phone sends an SMS to the shortcode
    status, reply = phone(
        runtime, {"sms": True, "from": PHONE_NUMBER, "to": "28444", "text": "hello by sms"}
    )
    # Then it was delivered, and N402 reaches the inbox signed
    assert status == 200, reply
    assert "ReportFunction" in reply["sms"], reply
    wait_for_text(runtime, "/_inbox/postbacks", r'data-code="N402" data-signature="valid"')


@pytest.mark.e2e
def test_postbacks_of_an_account_without_a_url_reach_the_inbox(runtime: LocalRuntime) -> None:
    # Given an account made with mmsapi-admin, without a postback URL
    made = runtime.run("-m", "mmsapi.admin", "create-account", "--name", "nourl",
                       "--shortcode", "28666")  # fmt: skip
    assert made.returncode == 0, made.stderr
    account_id = made.stdout.split("account-id:")[1].split()[0]
    key = made.stdout.split("api-key:")[1].split()[0]
    time.sleep(0.6)  # accounts are cached half a second per function (docs/accounts.md)
    # When it saves a template
    save = f"""<request><action>saveMMS</action><api-key>{key}</api-key>
        <message-subject>s</message-subject><name>n</name>
        <slide><message-text>t</message-text></slide></request>"""
    _, saved = answer(runtime.post("/ep/v1/", save))
    assert saved["status"] == "Success", saved
    # Then its N003 is in the inbox, under its account, signed with its secret
    page = wait_for_text(runtime, "/_inbox/postbacks", rf"<td>{account_id}</td><td>N003")
    row = next(r for r in page.split("<tr ") if f"<td>{account_id}</td>" in r)
    assert 'data-signature="valid"' in row
