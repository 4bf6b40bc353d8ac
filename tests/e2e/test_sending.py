"""Sending end to end on the local runtime: saveMMS, sendSavedMMS, the simulated carrier,
the postbacks, the fallback SMS and its hosted page in headless Chromium.

One runtime process serves the module. Its simulated MMSC refuses MMS for REFUSING
(the API falls back to SMS) and delivers to every other number, reporting an iPhone
UAProf. Sends happen in module fixtures; each test checks one stage of them:

    saveMMS -> N003 -> sendSavedMMS(NUMBER) -> SubmitReq at the MMSC -> N101 MMS -> N102
                    -> sendSavedMMS(REFUSING) -> fallback SMS with a link -> N101 SMS -> N202
                    -> the link, opened in Chromium at phone width

The runtime helpers (LocalRuntime, Postbacks, ...) are tests/e2e/runtime.py's. Chromium
is Debian's (/usr/bin/chromium, /usr/bin/chromedriver: .ci/run installs them); set
MMS_E2E_SCREENSHOT=/some/file.png to keep a copy of the page's screenshot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from mmsapi.carrier.mm7 import parse_submit_req
from mmsapi.tracking import parse_tracking_id
from tests.e2e.runtime import KEY, LocalRuntime, Postback, answer, started_runtime
from tests.media import photo_jpeg

NUMBER = "14044790000"  # the MMSC delivers and reports an iPhone
REFUSING = "14045550122"  # the MMSC refuses MMS for it: the API sends the fallback SMS
IPHONE_UAPROF = "http://www.apple.com/mms/uaprof.rdf"
NEW_NUMBER = "14044790077"  # unknown handset: a Device Discovery Message goes first
ANDROID_UAPROF = "http://wap.samsungmobile.com/uaprof/SM-G991B.xml"
MMSC_RULES = [
    {"match": f"^{REFUSING}$", "outcome": "refuse"},
    {"match": f"^{NEW_NUMBER}$", "outcome": "retrieved", "ua_prof": ANDROID_UAPROF},
    {"match": ".*", "outcome": "retrieved", "ua_prof": IPHONE_UAPROF},
]
POSTBACK_TIMEOUT = 20.0
FILE_TIMEOUT = 10.0
SUBJECT = "Your coupon, {$firstname|customer}"
SLIDE_1 = "Hello {$firstname|customer}, here is your coupon"
CUSTOM_TEXT = "Show this at the till, {$firstname|friend}"
FALLBACK_TEXT = "See your coupon"
CLIENT_REFERENCE = "spring-77"
# What Bill reads.
BILLS_SUBJECT = "Your coupon, Bill"
BILLS_SLIDE_1 = "Hello Bill, here is your coupon"
BILLS_SLIDE_2 = "Show this at the till, Bill"
PHONE = (390, 844)  # CSS pixels, an iPhone 12-15's viewport
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu")


# ---------------------------------------------------------------- the runtime and its carrier


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """Given `python -m local.runtime` on free ports, its simulated MMSC following
    MMSC_RULES, postbacks going to a local server."""
    with started_runtime(
        tmp_path_factory.mktemp("sending"),
        env={"MMS_LOCAL_MMSC_RULES": json.dumps(MMSC_RULES)},
        # A real MMSC would replace the simulated one; a failing SMS gateway, the SMS.
        unset=("MMS_MM7_URL", "MMS_LOCAL_SMS_FAIL"),
    ) as started:
        started.web.expect_request("/images/coupon.jpg").respond_with_data(
            photo_jpeg(), content_type="image/jpeg"
        )
        yield started


def wait_for_file(find: Callable[[], Path | None], what: str, runtime: LocalRuntime) -> Path:
    deadline = time.monotonic() + FILE_TIMEOUT
    while time.monotonic() < deadline:
        found = find()
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {FILE_TIMEOUT} s:\n{runtime.text()}")


def mmsc_submission(runtime: LocalRuntime, number: str) -> Path:
    """The directory where the simulated MMSC kept the SubmitReq addressed to number."""

    def find() -> Path | None:
        for directory in sorted((runtime.data_dir / "mmsc").glob("*/")):
            submit = directory / "submit.txt"
            if (
                directory.name != "invalid"
                and submit.exists()
                and number in submit.read_text(encoding="utf-8", errors="replace")
            ):
                return directory
        return None

    return wait_for_file(find, f"SubmitReq for {number} at the simulated MMSC", runtime)


def sms_to(runtime: LocalRuntime, number: str) -> dict[str, Any]:
    """The fallback SMS the simulated gateway kept for number."""

    def find() -> Path | None:
        for path in sorted((runtime.data_dir / "sms").glob("*.json")):
            if json.loads(path.read_text())["to"] == number:
                return path
        return None

    found: dict[str, Any] = json.loads(wait_for_file(find, f"SMS to {number}", runtime).read_text())
    return found


# ---------------------------------------------------------------- requests and postbacks


def is_code(code: str, **fields: str) -> Callable[[Postback], bool]:
    return lambda p: (
        p.fields.get("code") == code
        and all(p.fields.get(name) == value for name, value in fields.items())
    )


def save_xml(image_url: str) -> str:
    return f"""<request>
    <action>saveMMS</action>
    <api-key>{KEY}</api-key>
    <message-subject>{SUBJECT}</message-subject>
    <name>Coupon</name>
    <fallback-sms-text>{FALLBACK_TEXT}</fallback-sms-text>
    <client-reference>{CLIENT_REFERENCE}</client-reference>
    <slide>
        <image><url>{image_url}</url></image>
        <message-text>{SLIDE_1}</message-text>
        <duration>5</duration>
    </slide>
    <slide>
        <message-text>Saved text of slide 2</message-text>
        <duration>5</duration>
    </slide>
</request>"""


def send_xml(mms_id: str, to: str) -> str:
    return f"""<request>
    <action>sendSavedMMS</action>
    <api-key>{KEY}</api-key>
    <mms-id>{mms_id}</mms-id>
    <to>{to}</to>
    <from>28444</from>
    <service-id>12345</service-id>
    <client-reference>{CLIENT_REFERENCE}</client-reference>
    <custom-subject>{SUBJECT}</custom-subject>
    <custom-text><value>{CUSTOM_TEXT}</value><slide>2</slide></custom-text>
    <data><firstname>Bill</firstname></data>
</request>"""


@dataclass(frozen=True)
class Sent:
    """A sendSavedMMS that the API accepted."""

    to: str
    answer: dict[str, str]

    @property
    def tracking_id(self) -> str:
        return self.answer["tracking-id"]


def send(runtime: LocalRuntime, mms_id: str, to: str) -> Sent:
    root, got = answer(runtime.post("/ep/v1/", send_xml(mms_id, to)))
    assert (root, got["status"]) == ("response", "Success"), (got, runtime.text())
    return Sent(to, got)


@pytest.fixture(scope="module")
def mms_id(runtime: LocalRuntime) -> str:
    """Given a two-slide template saved over HTTP (picture + merge tag, then text)."""
    root, got = answer(runtime.post("/ep/v1/", save_xml(runtime.web.url_for("/images/coupon.jpg"))))
    assert (root, got["status"]) == ("response", "Success"), (got, runtime.text())
    runtime.postbacks.wait_for(is_code("N003", **{"mms-id": got["mms-id"]}), POSTBACK_TIMEOUT)
    return got["mms-id"]


@pytest.fixture(scope="module")
def sent_as_mms(runtime: LocalRuntime, mms_id: str) -> Sent:
    """Given the template sent to Bill, whose carrier takes MMS."""
    return send(runtime, mms_id, NUMBER)


@pytest.fixture(scope="module")
def sent_as_sms(runtime: LocalRuntime, mms_id: str) -> Sent:
    """Given the template sent to Bill on the number whose carrier refuses MMS."""
    return send(runtime, mms_id, REFUSING)


@pytest.fixture(scope="module")
def view_link(runtime: LocalRuntime, sent_as_sms: Sent) -> str:
    """The hosted page's link at the end of the fallback SMS."""
    text = str(sms_to(runtime, REFUSING)["text"])
    found = re.search(rf"{re.escape(runtime.api_url)}/v/\d+\.[A-Za-z0-9_-]+$", text)
    assert found is not None, text
    return found.group(0)


# ---------------------------------------------------------------- MMS


@pytest.mark.e2e
def test_saved_template_is_announced_with_n003(runtime: LocalRuntime, mms_id: str) -> None:
    # Given / When the template saved over HTTP (fixture mms_id waits for its N003)
    # Then the N003 names the mms-id and echoes the client-reference
    n003 = runtime.postbacks.wait_for(is_code("N003", **{"mms-id": mms_id}), 1)
    assert n003.fields["origin"] == "MMS_MT"
    assert n003.fields["client-reference"] == CLIENT_REFERENCE


@pytest.mark.e2e
def test_send_is_accepted_with_a_tracking_id(mms_id: str, sent_as_mms: Sent) -> None:
    # Given / When sendSavedMMS to a number that takes MMS
    got = sent_as_mms.answer
    # Then the answer names the send and tells it is queued
    assert (got["mms-id"], got["to"], got["from"]) == (mms_id, NUMBER, "28444")
    assert parse_tracking_id(sent_as_mms.tracking_id) is not None, got
    assert got["status-details"] == "MMS request accepted and queued for delivery"


@pytest.mark.e2e
def test_mmsc_receives_the_personalised_submit_req(
    runtime: LocalRuntime, sent_as_mms: Sent
) -> None:
    # Given the accepted send
    # When the simulated MMSC has received its SubmitReq
    directory = mmsc_submission(runtime, NUMBER)
    # Then its SMIL has two slides, in order: the picture and Bill's text, then the custom text
    slides = etree.parse(str(directory / "smil.xml")).getroot().findall("body/par")
    assert len(slides) == 2, (directory / "smil.xml").read_text()

    def parts(slide: etree._Element, tag: str) -> list[Path]:
        """The part files a slide's elements point at (src="cid:<file name>")."""
        return [directory / str(e.get("src")).removeprefix("cid:") for e in slide.iter(tag)]

    (picture,) = parts(slides[0], "img")
    assert picture.read_bytes()[:3] == b"\xff\xd8\xff", picture  # a JPEG
    texts = [[p.read_text(encoding="utf-8") for p in parts(slide, "text")] for slide in slides]
    assert texts == [[BILLS_SLIDE_1], [BILLS_SLIDE_2]], texts
    # And the kept request, parsed again, carries the personalised subject to that number
    head, _, body = (directory / "submit.txt").read_bytes().partition(b"\r\n\r\n")
    submit = parse_submit_req(body, head.decode().removeprefix("Content-Type: "))
    assert submit.subject == BILLS_SUBJECT, submit
    assert [r.removeprefix("+") for r in submit.recipients] == [NUMBER], submit


@pytest.mark.e2e
def test_mms_send_gets_n101_then_n102_with_the_handset(
    runtime: LocalRuntime, mms_id: str, sent_as_mms: Sent
) -> None:
    # Given the accepted send, whose recipient's MMSC reports Retrieved with an iPhone UAProf
    tracking = {"tracking-id": sent_as_mms.tracking_id}
    # When its postbacks arrive
    n101 = runtime.postbacks.wait_for(is_code("N101", **tracking), POSTBACK_TIMEOUT)
    n102 = runtime.postbacks.wait_for(is_code("N102", **tracking), POSTBACK_TIMEOUT)
    # Then N101 tells it went as MMS, with the send's addressing
    assert n101.fields["sent-as"] == "MMS", n101.fields
    assert n101.fields["status"] == "Message Sent"
    assert (n101.fields["mms-id"], n101.fields["from"], n101.fields["to"]) == (
        mms_id,
        "28444",
        NUMBER,
    )
    assert n101.fields["client-reference"] == CLIENT_REFERENCE
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", n101.fields["timestamp"])
    assert "handset" not in n101.fields
    # And N102, after it, tells it was delivered to an iPhone
    assert n102.fields["status"] == "Message Sent/Delivered", n102.fields
    assert n102.fields["handset"] == "iPhone"
    assert n102.fields["client-reference"] == CLIENT_REFERENCE
    received = runtime.postbacks.all()
    assert received.index(n101) < received.index(n102)
    # And nothing failed for this send
    codes = [
        p.fields["code"] for p in received if p.fields.get("tracking-id") == tracking["tracking-id"]
    ]
    assert sorted(codes) == ["N101", "N102"], codes


@pytest.mark.e2e
def test_new_number_with_ddm_fields_gets_the_ddm_first_then_the_adapted_mms(
    runtime: LocalRuntime, mms_id: str
) -> None:
    # Given a send with Device Discovery fields to a number whose handset is unknown
    ddm = (
        "<ddm-message-subject>We are detecting your handset</ddm-message-subject>"
        "<ddm-message-text>This message is free of charge</ddm-message-text>"
        "<ddm-message-timeout>5</ddm-message-timeout></request>"
    )
    xml = send_xml(mms_id, NEW_NUMBER).replace("</request>", ddm)
    root, got = answer(runtime.post("/ep/v1/", xml))
    assert (root, got["status"]) == ("response", "Success"), got
    tracking = {"tracking-id": got["tracking-id"]}
    # When its postbacks arrive: the DDM's N501 and N502 (with the handset), then the MMS's
    n502 = runtime.postbacks.wait_for(is_code("N502", **tracking), POSTBACK_TIMEOUT)
    runtime.postbacks.wait_for(is_code("N102", **tracking), POSTBACK_TIMEOUT)
    codes = [
        p.fields["code"]
        for p in runtime.postbacks.all()
        if p.fields.get("tracking-id") == tracking["tracking-id"]
    ]
    # (postbacks are delivered at least once and in no set order: the MMSC's order below
    # is what proves the DDM came first)
    assert sorted(codes) == ["N101", "N102", "N501", "N502"], codes
    assert n502.fields["handset"] == "Android phone"
    # Then the MMSC got the DDM first, then the MMS sent for the learnt Android handset
    subjects = []
    for directory in sorted((runtime.data_dir / "mmsc").glob("*/")):
        submit = directory / "submit.txt"
        if submit.exists() and NEW_NUMBER in submit.read_text(errors="replace"):
            text = submit.read_text(errors="replace")
            subjects.append("DDM" if "We are detecting your handset" in text else "MMS")
    assert subjects == ["DDM", "MMS"]


# ---------------------------------------------------------------- fallback SMS


@pytest.mark.e2e
def test_refused_mms_goes_as_sms_with_a_link_and_is_delivered(
    runtime: LocalRuntime, sent_as_sms: Sent, view_link: str
) -> None:
    # Given the send to the number whose carrier refuses MMS
    tracking = {"tracking-id": sent_as_sms.tracking_id}
    # When its postbacks arrive
    n101 = runtime.postbacks.wait_for(is_code("N101", **tracking), POSTBACK_TIMEOUT)
    n202 = runtime.postbacks.wait_for(is_code("N202", **tracking), POSTBACK_TIMEOUT)
    # Then N101 tells it went as SMS, and why
    assert n101.fields["sent-as"] == "SMS", n101.fields
    assert n101.fields["status"] == "Message Sent"
    assert "4007" in n101.fields["status-details"], n101.fields
    # And the SMS is the fallback text plus the link to this runtime's hosted page
    sms = sms_to(runtime, REFUSING)
    assert (sms["from"], sms["text"]) == ("28444", f"{FALLBACK_TEXT} {view_link}"), sms
    # And N202 tells the SMS was delivered
    assert n202.fields["status"] == "Message Sent/Delivered", n202.fields
    assert n202.fields["client-reference"] == CLIENT_REFERENCE
    codes = [
        p.fields["code"]
        for p in runtime.postbacks.all()
        if p.fields.get("tracking-id") == tracking["tracking-id"]
    ]
    assert sorted(codes) == ["N101", "N202"], codes
    # And the refused MMS was not kept by the MMSC
    submits = (runtime.data_dir / "mmsc").glob("*/submit.txt")
    assert not [s for s in submits if REFUSING in s.read_text(errors="replace")]


@pytest.mark.e2e
def test_hosted_page_is_served_and_a_wrong_secret_is_404(
    runtime: LocalRuntime, view_link: str
) -> None:
    # Given the link of the fallback SMS
    # When it is fetched
    with urllib.request.urlopen(view_link, timeout=10) as response:
        page = response.read().decode()
        headers = response.headers
    # Then it is a private HTML page with the personalised subject
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Cache-Control"] == "private, no-store"
    assert f"<title>{BILLS_SUBJECT}</title>" in page
    # And the same send with another secret is not found
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(view_link[:-1] + ("A" if view_link[-1] != "A" else "B"), timeout=10)
    assert caught.value.code == 404


# ---------------------------------------------------------------- the page in a browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[WebDriver]:
    """Given headless Chromium at phone width (Debian's chromium and chromium-driver)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={PHONE[0]},{PHONE[1]}")
    options.add_experimental_option(
        "mobileEmulation",
        {"deviceMetrics": {"width": PHONE[0], "height": PHONE[1], "pixelRatio": 2.0}},
    )
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(20)
        yield driver
    finally:
        driver.quit()


@pytest.mark.e2e
def test_hosted_page_shows_bills_mms_in_chromium_at_phone_width(
    chromium: WebDriver, view_link: str, tmp_path: Path
) -> None:
    # Given the link of the fallback SMS
    # When a phone's browser opens it
    chromium.get(view_link)
    WebDriverWait(chromium, 10).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete'"
            " && [...document.images].every(i => i.complete)"
        )
    )
    # Then the page is as wide as the phone and titled with Bill's subject
    assert chromium.execute_script("return window.innerWidth") == PHONE[0]
    assert chromium.title == BILLS_SUBJECT
    assert chromium.find_element(By.TAG_NAME, "h1").text == BILLS_SUBJECT
    # And it shows the two slides in order: the picture with Bill's text, then the custom text
    slides = chromium.find_elements(By.CSS_SELECTOR, "section.slide")
    assert [s.get_attribute("id") for s in slides] == ["slide-1", "slide-2"]
    assert [s.find_element(By.TAG_NAME, "p").text for s in slides] == [
        BILLS_SLIDE_1,
        BILLS_SLIDE_2,
    ]
    (picture,) = slides[0].find_elements(By.TAG_NAME, "img")
    complete, natural_width, shown_width = chromium.execute_script(
        "const i = arguments[0];"
        " return [i.complete, i.naturalWidth, i.getBoundingClientRect().width]",
        picture,
    )
    # the presigned S3 URL of the embedded AWS served it, and the page fits it to the phone
    assert complete is True
    assert natural_width > 0
    assert 0 < shown_width <= PHONE[0]
    assert slides[1].find_elements(By.TAG_NAME, "img") == []
    # And a screenshot is a PNG of the phone's width, in device pixels
    shot = tmp_path / "hosted-page.png"
    assert chromium.save_screenshot(str(shot))
    ratio = chromium.execute_script("return window.devicePixelRatio")
    with Image.open(BytesIO(shot.read_bytes())) as image:
        assert image.format == "PNG"
        assert image.width == round(PHONE[0] * ratio), (image.size, ratio)
    keep = os.environ.get("MMS_E2E_SCREENSHOT")
    if keep:  # a copy for a person to look at
        shutil.copyfile(shot, keep)


# ---------------------------------------------------------------- and nothing went wrong


@pytest.mark.e2e
def test_runtime_logged_no_errors(
    runtime: LocalRuntime, sent_as_mms: Sent, sent_as_sms: Sent
) -> None:
    # Given everything above done
    # Then the runtime's output holds no traceback and no error line
    text = runtime.text()
    assert "Traceback" not in text, text
    assert not re.search(r"\bERROR\b|\"level\": ?\"ERROR\"", text), text
