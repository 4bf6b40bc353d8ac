"""The simulated MMSC end to end on loopback, and the MM7 client against odd MMSCs.

The API side is played by mm7_client.submit; the report URL is a pytest-httpserver
that answers DeliveryReportRsp like the report route of the API would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from werkzeug import Request, Response

from local.mmsc import DEFAULT_RULE, GENERIC_UA_PROF, Outcome, Rule, SimulatedMmsc, rules_from_env
from mmsapi.carrier.message import MessagePart, OutgoingMessage, SlidePlan
from mmsapi.carrier.mm7 import (
    NAMESPACES,
    Action,
    DeliveryReport,
    MM7Error,
    MMStatus,
    build_delivery_report_rsp,
    build_fault,
    build_submit_req,
    build_submit_rsp,
    parse_delivery_report,
)
from mmsapi.carrier.mm7_client import CarrierUnavailable, submit
from mmsapi.settings import Settings

IPHONE = "http://www.apple.com/mms/uaprof.rdf"
RULES = (
    '[{"match": "^1404555", "outcome": "rejected"},'
    ' {"match": "^1999", "outcome": "refuse"},'
    ' {"match": "^1888", "outcome": "unavailable"},'
    ' {"match": "^1777", "outcome": "silent"},'
    f' {{"match": "^1212", "outcome": "retrieved", "ua_prof": "{IPHONE}"}}]'
)
REPORT_PATH = "/mm7/report"


@pytest.fixture
def settings() -> Settings:
    return Settings(allow_loopback_media=True)


@pytest.fixture
def reports(httpserver: Any) -> list[DeliveryReport]:
    """Given a report URL that parses every DeliveryReportReq and answers 1000."""
    got: list[DeliveryReport] = []

    def answer(request: Request) -> Response:
        report = parse_delivery_report(request.get_data(), request.content_type or "")
        got.append(report)
        return Response(build_delivery_report_rsp(report.transaction_id), content_type="text/xml")

    httpserver.expect_request(REPORT_PATH, method="POST").respond_with_handler(answer)
    return got


@pytest.fixture
def mmsc(tmp_path: Path, httpserver: Any) -> Iterator[SimulatedMmsc]:
    """Given a simulated MMSC with the rules above, reporting quickly."""
    simulated = SimulatedMmsc(
        tmp_path,
        httpserver.url_for(REPORT_PATH),
        rules_from_env(RULES),
        report_delay=0.05,
        report_retry_interval=0.1,
    )
    simulated.start()
    yield simulated
    simulated.stop()


def message() -> OutgoingMessage:
    parts = [
        MessagePart(
            content_id="s1.jpg",
            content_type="image/jpeg",
            filename="s1.jpg",
            data=b"\xff\xd8jpeg\xff\xd9",
        ),
        MessagePart(
            content_id="s1.txt",
            content_type="text/plain; charset=utf-8",
            filename="../../etc/s1.txt",  # a hostile name must not escape the folder
            data=b"Hi there",
        ),
    ]
    return OutgoingMessage(
        subject="Weekend offer",
        slides=[SlidePlan(duration=5, image="s1.jpg", text="s1.txt")],
        parts=parts,
    )


def send(url: str, recipient: str, settings: Settings, version: str = "6.8.0") -> Any:
    body, content_type = build_submit_req(
        message(),
        recipient=recipient,
        sender="28444",
        vasp_id="vasp",
        vas_id="12345",
        service_code="svc",
        transaction_id=f"tx-{recipient}",
        version="5.3.0" if version == "5.3.0" else "6.8.0",
    )
    return submit(
        url,
        body,
        content_type,
        username="demo",
        password="secret",
        soap_action=NAMESPACES["6.8.0"],
        timeout=5.0,
        settings=settings,
    )


def wait_for(got: list[DeliveryReport], count: int = 1, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(got) >= count, f"{len(got)} of {count} reports arrived"


# ---- the simulated MMSC --------------------------------------------------------


def test_retrieved_with_handset_profile(
    mmsc: SimulatedMmsc, reports: list[DeliveryReport], settings: Settings
) -> None:
    # Given a number whose rule is "retrieved" on an iPhone
    # When the API submits an MMS to it
    result = send(mmsc.url, "+12125550100", settings)

    # Then the MMSC accepts it with a message id
    assert (result.status_code, result.action) == (1000, Action.OK)
    assert result.message_id
    assert result.transaction_id == "tx-+12125550100"
    # And a Retrieved report with the rule's UAProf reaches the report URL
    wait_for(reports)
    (report,) = reports
    assert (report.message_id, report.recipient, report.sender) == (
        result.message_id,
        "12125550100",
        "28444",
    )
    assert (report.mm_status, report.ua_prof) == (MMStatus.RETRIEVED, IPHONE)


def test_what_was_received_is_kept(
    mmsc: SimulatedMmsc, reports: list[DeliveryReport], settings: Settings, tmp_path: Path
) -> None:
    # Given an accepted submit
    result = send(mmsc.url, "+447700900750", settings, version="5.3.0")

    # When the developer looks at what the MMSC got
    (submission,) = mmsc.submissions()
    folder = tmp_path / "mmsc" / str(result.message_id)

    # Then the parsed request, the credentials' user and the files are there
    assert mmsc.received() == [submission.submit]
    assert submission.submit.subject == "Weekend offer"
    assert submission.submit.version == "5.3.0"
    assert (submission.username, submission.soap_action) == ("demo", f'"{NAMESPACES["6.8.0"]}"')
    assert submission.directory == folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "s1.jpg",
        "s1.txt",
        "smil.xml",
        "submit.txt",
    ]
    assert (folder / "s1.jpg").read_bytes() == b"\xff\xd8jpeg\xff\xd9"
    assert (folder / "smil.xml").read_text().startswith("<smil>")
    assert (folder / "submit.txt").read_bytes().startswith(b"Content-Type: multipart/related")
    # And the report says Retrieved without a profile: 5.3.0 has no UACapabilities
    wait_for(reports)
    assert (reports[0].mm_status, reports[0].ua_prof) == (MMStatus.RETRIEVED, None)


def test_unmatched_number_gets_the_default_rule(
    mmsc: SimulatedMmsc, reports: list[DeliveryReport], settings: Settings
) -> None:
    # Given a number no rule matches
    # When the API submits to it
    send(mmsc.url, "+33612345678", settings)

    # Then the default rule reports Retrieved with the generic handset profile
    wait_for(reports)
    assert (reports[0].mm_status, reports[0].ua_prof) == (MMStatus.RETRIEVED, GENERIC_UA_PROF)


def test_rejected_number(
    mmsc: SimulatedMmsc, reports: list[DeliveryReport], settings: Settings
) -> None:
    # Given a number whose rule is "rejected"
    # When the API submits to it
    result = send(mmsc.url, "14045550199", settings)

    # Then the submit is accepted and the report says Rejected, without a handset
    assert result.status_code == 1000
    wait_for(reports)
    assert (reports[0].mm_status, reports[0].ua_prof) == (MMStatus.REJECTED, None)


def test_refused_number_falls_back(mmsc: SimulatedMmsc, settings: Settings) -> None:
    # Given a number whose rule is "refuse"
    # When the API submits to it
    result = send(mmsc.url, "+19995550100", settings)

    # Then the MMSC refuses with 4007, which means "send the fallback SMS"
    assert (result.status_code, result.action) == (4007, Action.FALLBACK)
    assert result.transaction_id == "tx-+19995550100"
    assert mmsc.received() == []


def test_unavailable_number_is_transient(mmsc: SimulatedMmsc, settings: Settings) -> None:
    # Given a number whose rule is "unavailable"
    # When / Then the submit raises CarrierUnavailable (HTTP 503): the caller retries
    with pytest.raises(CarrierUnavailable, match="503"):
        send(mmsc.url, "18885550100", settings)


def test_silent_number_never_reports(
    mmsc: SimulatedMmsc, reports: list[DeliveryReport], settings: Settings
) -> None:
    # Given a number whose rule is "silent"
    # When the API submits to it
    result = send(mmsc.url, "17775550100", settings)

    # Then it is accepted but no report comes (what a DDM timeout needs)
    assert result.status_code == 1000
    time.sleep(0.3)
    assert reports == []


def test_invalid_submit_gets_fault_2007(mmsc: SimulatedMmsc, settings: Settings) -> None:
    # Given a body that is not a SubmitReq
    # When it is posted
    result = submit(
        mmsc.url,
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n",
        'multipart/related; boundary="b"',
        username="",
        password="",
        timeout=5.0,
        settings=settings,
    )

    # Then the MMSC answers "message format corrupt", which is not worth retrying
    assert (result.status_code, result.action) == (2007, Action.FAIL)


def test_report_is_retried_until_the_url_is_up(
    tmp_path: Path, httpserver: Any, settings: Settings
) -> None:
    # Given a report URL that answers 503 twice before it is up
    calls: list[int] = []

    def flaky(request: Request) -> Response:
        calls.append(1)
        if len(calls) <= 2:
            return Response("starting", status=503)
        report = parse_delivery_report(request.get_data(), request.content_type or "")
        return Response(build_delivery_report_rsp(report.transaction_id), content_type="text/xml")

    httpserver.expect_request(REPORT_PATH, method="POST").respond_with_handler(flaky)
    simulated = SimulatedMmsc(
        tmp_path, httpserver.url_for(REPORT_PATH), [], report_delay=0.0, report_retry_interval=0.05
    )
    url = simulated.start()
    try:
        # When a message is submitted
        send(url, "12125550100", settings)

        # Then the third attempt delivers the report
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(calls) == 3
    finally:
        simulated.stop()


def test_rules_from_env() -> None:
    # Given the documented environment value
    rules = rules_from_env(RULES)

    # When / Then the rules come back in order, the first match wins, and no match is default
    assert [r.outcome for r in rules] == [
        Outcome.REJECTED,
        Outcome.REFUSE,
        Outcome.UNAVAILABLE,
        Outcome.SILENT,
        Outcome.RETRIEVED,
    ]
    mmsc = SimulatedMmsc(Path("/nonexistent"), "http://127.0.0.1:9/", rules)
    assert mmsc.rule_for("+14045550000").outcome is Outcome.REJECTED
    assert mmsc.rule_for("12125550000").ua_prof == IPHONE
    assert mmsc.rule_for("33612345678") == DEFAULT_RULE
    assert DEFAULT_RULE.ua_prof == GENERIC_UA_PROF
    assert rules_from_env("  ") == []


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        '[{"match": "(", "outcome": "retrieved"}]',
        '[{"match": ".*", "outcome": "lost"}]',
        '[{"match": ".*", "outcome": "retrieved", "typo": 1}]',
    ],
)
def test_bad_rules_are_refused(value: str) -> None:
    # Given a malformed rules value
    # When / Then it is refused with a ValueError naming the problem
    with pytest.raises(ValidationError):
        rules_from_env(value)
    assert issubclass(ValidationError, ValueError)


def test_a_refuse_rule_can_choose_its_code() -> None:
    # Given a refuse rule with its own status
    rule = Rule(match="^33", outcome=Outcome.REFUSE, status_code=2002)

    # When / Then it keeps it (2002: address error, also a fallback)
    assert rule.status_code == 2002


# ---- the client against odd MMSCs ----------------------------------------------


def test_client_sends_auth_and_soap_action(httpserver: Any, settings: Settings) -> None:
    # Given an MMSC that notes the request headers
    seen: dict[str, str] = {}

    def accept(request: Request) -> Response:
        seen.update(request.headers)
        answer = build_submit_rsp("tx-12125550100", 1000, "Success", "m-1")
        return Response(answer, content_type="text/xml")

    httpserver.expect_request("/mm7", method="POST").respond_with_handler(accept)

    # When a submit is sent
    result = send(httpserver.url_for("/mm7"), "12125550100", settings)

    # Then basic auth, SOAPAction and the multipart Content-Type travel
    assert (result.status_code, result.message_id) == (1000, "m-1")
    assert seen["Authorization"] == "Basic ZGVtbzpzZWNyZXQ="
    assert seen["Soapaction"] == f'"{NAMESPACES["6.8.0"]}"'
    assert seen["Content-Type"].startswith('multipart/related; type="text/xml"')


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (500, build_fault("t", 2007, "Unable to parse request", "corrupt"), 2007),
        (400, build_fault("t", 2002, "Address Error"), 2002),
        (401, b"", 4001),
        (404, b"<html>no</html>", 2000),
    ],
)
def test_client_reads_http_errors(
    httpserver: Any, settings: Settings, status: int, body: bytes, code: int
) -> None:
    # Given an MMSC answering an HTTP error, with or without an MM7 fault
    httpserver.expect_request("/mm7").respond_with_data(
        body, status=status, content_type="text/xml"
    )

    # When a submit is sent
    result = send(httpserver.url_for("/mm7"), "12125550100", settings)

    # Then it is read as an MM7 status, not raised
    assert result.status_code == code


@pytest.mark.parametrize(("status", "body"), [(502, b"bad gateway"), (500, b"oops"), (429, b"")])
def test_client_raises_unavailable(
    httpserver: Any, settings: Settings, status: int, body: bytes
) -> None:
    # Given an MMSC (or its proxy) that is down or throttling
    httpserver.expect_request("/mm7").respond_with_data(body, status=status)

    # When / Then the submit raises CarrierUnavailable
    with pytest.raises(CarrierUnavailable, match=str(status)):
        send(httpserver.url_for("/mm7"), "12125550100", settings)


def test_client_unreachable_and_redirect(httpserver: Any, settings: Settings) -> None:
    # Given a port nobody listens on, and an MMSC that redirects
    httpserver.expect_request("/moved").respond_with_data(
        "", status=302, headers={"Location": "/elsewhere"}
    )

    # When / Then both are CarrierUnavailable (no redirect is followed)
    with pytest.raises(CarrierUnavailable, match="could not connect"):
        send("http://127.0.0.1:9/mm7", "12125550100", settings)
    with pytest.raises(CarrierUnavailable, match="not followed"):
        send(httpserver.url_for("/moved"), "12125550100", settings)


def test_client_refuses_loopback_unless_allowed(mmsc: SimulatedMmsc) -> None:
    # Given settings of a deployment (loopback not allowed)
    # When / Then the guard refuses the loopback MMSC
    with pytest.raises(CarrierUnavailable, match="loopback"):
        send(mmsc.url, "12125550100", Settings(allow_loopback_media=False))


def test_client_garbage_2xx_raises(httpserver: Any, settings: Settings) -> None:
    # Given an MMSC answering 200 with something that is not MM7
    httpserver.expect_request("/mm7").respond_with_data("<html>welcome</html>", status=200)

    # When / Then MM7Error: the message may have been taken, the caller decides
    with pytest.raises(MM7Error):
        send(httpserver.url_for("/mm7"), "12125550100", settings)
