"""One tracking-id followed end to end on the local runtime: through the log lines of
every function the send touched (API, deliver, report, outbox relay, postback), and
through `mmsapi-admin trace`.

The runtime prefixes each line a function prints with its logical id
([DeliverFunction] {...}); the functions' Powertools lines are JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mmsapi.tracking import parse_tracking_id
from tests.e2e.runtime import KEY, LocalRuntime, Postback, answer, started_runtime

NUMBER = "14044790000"  # the simulated MMSC delivers and reports
REFERENCE = "trace-e2e-7"
TIMEOUT = 20.0
POSTED = "postback delivered"
IDS = ("account", "action", "mms_id", "send_id", "tracking_id", "client_reference")
# Every function one MMS send goes through, and what its lines say it did.
FUNCTIONS = {
    "ApiFunction": "sendSavedMMS",
    "DeliverFunction": "deliver",
    "ReportFunction": "report",
    "OutboxFunction": "relay",
    "PostbackFunction": "postback",
}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with started_runtime(tmp_path_factory.mktemp("trace-e2e")) as started:
        yield started


def post(runtime: LocalRuntime, xml: str) -> dict[str, str]:
    fields = answer(runtime.post("/ep/v1/", xml))[1]
    assert fields["status"] == "Success", fields
    return fields


def function_lines(runtime: LocalRuntime) -> list[tuple[str, dict[str, Any]]]:
    """(function, JSON line) of every Powertools line a function printed."""
    found = []
    for text in runtime.text().splitlines():
        if not text.startswith("["):
            continue
        function, _, rest = text.partition("] ")
        if rest.startswith("{") and '"level"' in rest:
            found.append((function[1:], json.loads(rest)))
    return found


def is_of(line: dict[str, Any], tracking: str) -> bool:
    return line.get("tracking_id") == tracking


def told(tracking: str, code: str) -> Any:
    def found(postback: Postback) -> bool:
        fields = postback.fields
        return fields.get("code") == code and fields.get("tracking-id") == tracking

    return found


@pytest.mark.e2e
def test_one_tracking_id_is_followed_through_every_function_and_trace(
    runtime: LocalRuntime,
) -> None:
    # Given a saved MMS, sent with a client-reference
    saved = post(
        runtime,
        f"<request><action>saveMMS</action><api-key>{KEY}</api-key><name>n</name>"
        "<message-subject>Hi</message-subject><slide><message-text>one</message-text></slide>"
        "</request>",
    )
    mms_id = saved["mms-id"]
    tracking = post(
        runtime,
        f"<request><action>sendSavedMMS</action><api-key>{KEY}</api-key><mms-id>{mms_id}</mms-id>"
        f"<to>{NUMBER}</to><from>28444</from><service-id>12345</service-id>"
        f"<fallback-sms-text>See</fallback-sms-text><client-reference>{REFERENCE}"
        "</client-reference></request>",
    )["tracking-id"]
    # When it is delivered, reported, and its postbacks told
    runtime.postbacks.wait_for(told(tracking, "N102"), TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    lines: list[tuple[str, dict[str, Any]]] = []
    while time.monotonic() < deadline:
        lines = [(f, line) for f, line in function_lines(runtime) if is_of(line, tracking)]
        told_codes = {line.get("code") for _, line in lines if line["message"] == POSTED}
        if {"N101", "N102"} <= told_codes:
            break
        time.sleep(0.2)

    # Then every function it touched wrote lines carrying its tracking-id
    functions = {function for function, _ in lines}
    assert set(FUNCTIONS) <= functions, (functions, runtime.text()[-4000:])
    # and every such line carries all its ids, and what the function was doing
    account = next(line["account"] for _, line in lines)
    expected = {
        "account": account,
        "mms_id": mms_id,
        "send_id": str(parse_tracking_id(tracking)),
        "tracking_id": tracking,
        "client_reference": REFERENCE,
    }
    for function, line in lines:
        ids = {key: line.get(key) for key in IDS}
        assert ids == {**expected, "action": FUNCTIONS.get(function, ids["action"])}, line
    messages = {(function, line["message"]) for function, line in lines}
    for step in (
        ("ApiFunction", "answered"),
        ("DeliverFunction", "adapted"),
        ("DeliverFunction", "submitted"),
        ("ReportFunction", "delivery report"),
        ("OutboxFunction", "postback published"),
        ("PostbackFunction", "postback delivered"),
    ):
        assert step in messages, (step, messages)

    # And `mmsapi-admin trace` prints the same send: its ids, steps, rendition, postbacks
    done = runtime.run("-m", "mmsapi.admin", "trace", tracking)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"client-reference:  {REFERENCE}" in out, out
    steps = ["accepted, queued", "sent as MMS", "adapted for", "delivered (the carrier"]
    positions = [out.find(step) for step in steps]
    assert -1 not in positions, out
    assert positions == sorted(positions), out
    assert f'filter tracking_id = "{tracking}"' in out, out
