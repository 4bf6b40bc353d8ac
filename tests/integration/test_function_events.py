"""The other Lambda handlers driven by their events in events/<function>/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Client, load_event
from tests.lambda_context import FakeLambdaContext, load_handler_module

# Delivery reports are matched while AWS's indexes may still lag behind the send's write.
pytestmark = pytest.mark.gsi_lag(3600)

TOKEN = "local-report-token-0123456789"


@pytest.fixture
def report_token(monkeypatch: pytest.MonkeyPatch, client: Client) -> str:
    from mmsapi.settings import get_settings

    monkeypatch.setenv("MMS_CARRIER_REPORT_TOKEN", TOKEN)
    get_settings.cache_clear()
    return TOKEN


def run(function: str, event: str) -> Any:
    return load_handler_module(function).handler(load_event(event), FakeLambdaContext())


def test_view_of_an_unknown_link_is_404(client: Client) -> None:
    result = run("view", "view/unknown-link.json")
    assert result["statusCode"] == 404
    assert "not valid" in result["body"]


def test_report_with_a_wrong_token_is_403(report_token: str) -> None:
    assert run("report", "report/mm7-wrong-token.json")["statusCode"] == 403


def test_mm7_report_of_an_unknown_message_is_still_acknowledged(report_token: str) -> None:
    result = run("report", "report/mm7-unknown-message.json")
    assert result["statusCode"] == 200
    assert "DeliveryReportRsp" in result["body"]
    assert "1000" in result["body"]


def test_sms_report_of_an_unknown_message_is_404(report_token: str) -> None:
    assert run("report", "report/sms-unknown-message.json")["statusCode"] == 404


def test_deliver_of_an_unknown_send_reports_no_failure(client: Client) -> None:
    assert run("deliver", "deliver/unknown-send.json") == {"batchItemFailures": []}
    # A Device Discovery Message's timeout (a delayed send queue message), its send gone
    assert run("deliver", "deliver/ddm-timeout-unknown-send.json") == {"batchItemFailures": []}


def test_finalize_of_an_unknown_template_does_nothing(client: Client) -> None:
    assert run("finalize", "finalize/unknown-template.json") == {"mms_id": 987654, "status": "gone"}
