"""Device Discovery Message: the discovery workflow really executing, the DDM's delivery
report resuming it, then the MMS adapted to the learnt handset."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from local.mmsc import Rule, SimulatedMmsc
from local.stack import Stack
from mmsapi.models import SendStatus
from mmsapi.services import context as context_module
from mmsapi.services.ddm import after_discovery
from mmsapi.services.deliver import deliver
from mmsapi.services.report import mm7_report
from mmsapi.settings import get_settings
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.helpers import answer, postback_events

# Delivery reports are matched while AWS's indexes may still lag behind the send's write.
pytestmark = [pytest.mark.state_machines_execute, pytest.mark.gsi_lag(3600)]

NEW_NUMBER = "14044790001"
ANDROID = "http://www-ccpp.tcl-ta.com/files/ALCATEL-ONE_TOUCH_OT-991.xml"
SAMSUNG = "http://wap.samsungmobile.com/uaprof/SM-G991B.xml"


@pytest.fixture
def mmsc(
    client: Client,
    functions_bridged: Stack,
    httpserver: HTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SimulatedMmsc]:
    """Given the simulated MMSC, its reports handled as the report route would, and the
    workflows' Lambda tasks run by the real handlers."""

    def report(request: Request) -> Response:
        return Response(
            mm7_report(context_module.context(), request.get_data(), request.content_type or ""),
            content_type="text/xml",
        )

    httpserver.expect_request("/report").respond_with_handler(report)
    server = SimulatedMmsc(
        tmp_path,
        httpserver.url_for("/report"),
        [Rule(match=".*", outcome="retrieved", ua_prof=SAMSUNG)],
        report_delay=0.05,
    )
    monkeypatch.setenv("MMS_MM7_URL", server.start())
    get_settings.cache_clear()
    context_module.reset()
    client.ctx = context_module.context()
    yield server
    server.stop()


def send_with_ddm(client: Client, force: str = "false") -> int:
    saved = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>d</name>"
            "<message-subject>Offer</message-subject>"
            "<slide><message-text>Real content</message-text></slide></request>"
        )
    )
    got = answer(
        client.post(
            f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
            f"<mms-id>{saved['mms-id']}</mms-id><to>{NEW_NUMBER}</to><from>28444</from>"
            "<service-id>12345</service-id><fallback-sms-text>see</fallback-sms-text>"
            "<ddm-message-subject>We are detecting your handset</ddm-message-subject>"
            "<ddm-message-text>This message is free of charge</ddm-message-text>"
            f"<ddm-message-timeout>10</ddm-message-timeout><ddm-force>{force}</ddm-force></request>"
        )
    )
    assert got["status"] == "Success", got
    return parse_tracking_id(got["tracking-id"]) or 0


def wait_for_status(client: Client, send_id: int, status: SendStatus, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        send = client.ctx.sends.get(send_id)
        if send is not None and send.status is status:
            return
        time.sleep(0.1)
    raise AssertionError(f"send {send_id} is {send.status if send else None}, not {status}")


def test_ddm_first_then_the_mms_for_the_learnt_handset(
    client: Client, stack: Stack, mmsc: SimulatedMmsc
) -> None:
    # Given a send with DDM fields to a number whose handset is unknown
    send_id = send_with_ddm(client)
    postback_events(stack)
    # When it is delivered
    assert deliver(client.ctx, send_id) == "discovering the handset"
    # Then the DDM goes first, its report teaches the handset, and the MMS follows
    wait_for_status(client, send_id, SendStatus.DELIVERED)
    received = mmsc.received()
    assert [r.subject for r in received] == ["We are detecting your handset", "Offer"]
    assert received[0].parts[0].data == b"This message is free of charge"
    cached = client.ctx.handsets.get(NEW_NUMBER)
    assert cached is not None
    assert cached.profile_id == "android"
    events = [e["detail"] for e in postback_events(stack)]
    assert [e["code"] for e in events] == ["N501", "N502", "N101", "N102"]
    assert events[1]["fields"]["handset"] == "Android phone"


def test_known_handset_skips_the_ddm_unless_forced(
    client: Client, stack: Stack, mmsc: SimulatedMmsc
) -> None:
    client.ctx.handsets.put(NEW_NUMBER, "iphone", None, "test")
    assert deliver(client.ctx, send_with_ddm(client)) == "sent as MMS"
    assert deliver(client.ctx, send_with_ddm(client, force="true")) == "discovering the handset"


def test_timeout_sends_the_mms_with_generic_settings(
    client: Client, stack: Stack, mmsc: SimulatedMmsc
) -> None:
    # Given a send whose DDM never reported (the workflow's wait ran out)
    send_id = send_with_ddm(client)
    send = client.ctx.sends.get(send_id)
    assert send is not None
    send.status = SendStatus.DISCOVERING
    client.ctx.sends.save(send)
    # When the workflow goes on, Then the MMS goes with generic settings, without a DDM
    assert after_discovery(client.ctx, send_id) == "sent as MMS"
    assert [r.subject for r in mmsc.received()] == ["Offer"]
    # And a second call (a retried step) sends nothing more
    assert after_discovery(client.ctx, send_id) == "not discovering"
    assert len(mmsc.received()) == 1
