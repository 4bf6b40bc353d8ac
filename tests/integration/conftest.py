"""Fixtures of the integration tests that talk to a carrier: the simulated MMSC and SMS
gateway, their delivery reports recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from local.mmsc import Rule, SimulatedMmsc
from local.sms import SimulatedSmsGateway
from local.stack import Stack
from mmsapi.services import context as context_module
from mmsapi.settings import get_settings
from mmsapi.store.accounts import AccountStore
from mmsapi.store.postback_attempts import PostbackAttemptsStore
from tests.conftest import Client
from tests.lambda_context import load_handler_module

DELIVERED_TO = "14044790000"
REJECTED = "14045550111"
REFUSED = "14045550122"
DOWN = "14045550133"
IPHONE = "http://www.apple.com/mms/uaprof.rdf"


@dataclass
class Carrier:
    mmsc: SimulatedMmsc
    sms: SimulatedSmsGateway
    reports: list[tuple[str, bytes, str]]  # (path, body, content type) as the carrier posted

    def wait_reports(self, count: int, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while len(self.reports) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.reports) >= count, self.reports


@pytest.fixture
def carrier(
    client: Client, httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Carrier]:
    """Given the simulated MMSC and SMS gateway, reporting to a recorder."""
    reports: list[tuple[str, bytes, str]] = []

    def record(request: Request) -> Response:
        reports.append((request.path, request.get_data(), request.content_type or ""))
        return Response("ok")

    httpserver.expect_request("/report/mm7").respond_with_handler(record)
    httpserver.expect_request("/report/sms").respond_with_handler(record)
    rules = [
        Rule(match=f"^{REJECTED}$", outcome="rejected"),
        Rule(match=f"^{REFUSED}$", outcome="refuse"),
        Rule(match=f"^{DOWN}$", outcome="unavailable"),
        Rule(match=".*", outcome="retrieved", ua_prof=IPHONE),
    ]
    mmsc = SimulatedMmsc(tmp_path, httpserver.url_for("/report/mm7"), rules, report_delay=0.05)
    sms = SimulatedSmsGateway(tmp_path, httpserver.url_for("/report/sms"), report_delay=0.05)
    monkeypatch.setenv("MMS_MM7_URL", mmsc.start())
    monkeypatch.setenv("MMS_SMS_URL", sms.start())
    monkeypatch.setenv("MMS_PUBLIC_BASE_URL", "https://mms.example.com")
    get_settings.cache_clear()
    context_module.reset()
    client.ctx = context_module.context()
    yield Carrier(mmsc, sms, reports)
    mmsc.stop()
    sms.stop()


@pytest.fixture
def postback_app(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The postback handler reading this stack's accounts and noting its attempts there
    (its module keeps the stores of the stack it was first loaded with, in any test)."""
    app = load_handler_module("postback")
    monkeypatch.setattr(app, "accounts", AccountStore())
    monkeypatch.setattr(app, "attempts", PostbackAttemptsStore())
