"""Traceable messages: every function's log lines, X-Ray annotations and metrics carry the
ids of the message at hand (account, action, mms_id, send_id, tracking_id,
client_reference), and no id outlives its request, record or invocation."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from local.aws_gate import acting_as
from local.stack import Stack
from mmsapi import observability
from mmsapi.batch import BatchFailedError
from mmsapi.observability import current_ids, logger, tracer
from mmsapi.services.accounts import set_postback
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client, load_event
from tests.integration.conftest import Carrier
from tests.integration.helpers import answer, relay_outbox
from tests.lambda_context import ROOT, FakeLambdaContext, load_handler_module

pytestmark = pytest.mark.gsi_lag(3600)  # reports find their send by consistent reads

TOKEN = "local-report-token-0123456789"
IDS = ("account", "action", "mms_id", "send_id", "tracking_id", "client_reference")
Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """Every Powertools JSON line the functions write, parsed (the list so far)."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line]

    try:
        yield lines
    finally:
        handler.setStream(previous)


@pytest.fixture
def postbacks(client: Client, httpserver: HTTPServer) -> list[bytes]:
    """Given the account's postback URL answering 200 (bodies recorded)."""
    received: list[bytes] = []

    def record(request: Any) -> Any:
        from werkzeug import Response

        received.append(request.get_data())
        return Response("ok")

    httpserver.expect_request("/postback").respond_with_handler(record)
    set_postback(client.ctx.accounts, client.account.account_id, httpserver.url_for("/postback"))
    return received


@pytest.fixture
def report_token(monkeypatch: pytest.MonkeyPatch, carrier: Carrier) -> str:
    monkeypatch.setenv("MMS_CARRIER_REPORT_TOKEN", TOKEN)
    get_settings.cache_clear()
    return TOKEN


def invoke(function: str, logical_id: str, event: dict[str, Any]) -> Any:
    """The handler of functions/<function>/app.py, as `logical_id` (its role)."""
    with acting_as(logical_id):
        return load_handler_module(function).handler(event, FakeLambdaContext())


def api(client: Client, xml: str) -> dict[str, str]:
    event = load_event("api/save-text-current.json")
    event["body"] = xml
    result = invoke("api", "ApiFunction", event)
    return answer(result["body"].encode("utf-8"))


def save(client: Client) -> str:
    got = api(
        client,
        f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>n</name>"
        "<message-subject>Hi</message-subject><slide><message-text>Hello</message-text>"
        "</slide></request>",
    )
    assert got["status"] == "Success", got
    return got["mms-id"]


def send(client: Client, mms_id: str, reference: str, to: str = "14044790000") -> str:
    got = api(
        client,
        f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
        f"<mms-id>{mms_id}</mms-id><to>{to}</to><from>28444</from>"
        f"<service-id>12345</service-id><fallback-sms-text>See</fallback-sms-text>"
        f"<client-reference>{reference}</client-reference>"
        "</request>",
    )
    assert got["status"] == "Success", got
    return got["tracking-id"]


def sqs_record(body: str, number: int = 1, receive_count: int = 1) -> dict[str, Any]:
    return {
        "messageId": f"m-{number}",
        "receiptHandle": f"rh-{number}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }


def queued_postbacks(stack: Stack) -> list[str]:
    """The bodies the postback queue holds (taken off it), once the outbox is relayed."""
    relay_outbox(stack)
    bodies: list[str] = []
    while True:
        got = aws.sqs().receive_message(
            QueueUrl=stack.physical["PostbackQueue"], MaxNumberOfMessages=10
        )
        if not got.get("Messages"):
            return bodies
        for message in got["Messages"]:
            bodies.append(message["Body"])
            aws.sqs().delete_message(
                QueueUrl=stack.physical["PostbackQueue"], ReceiptHandle=message["ReceiptHandle"]
            )


@contextmanager
def phase(lines: Lines) -> Iterator[list[dict[str, Any]]]:
    """The lines written inside the block."""
    before = len(lines())
    written: list[dict[str, Any]] = []
    yield written
    written.extend(lines()[before:])


def ids_of(line: dict[str, Any]) -> dict[str, Any]:
    return {key: line.get(key) for key in IDS}


def test_one_send_is_followed_by_its_ids_through_every_function(
    client: Client,
    carrier: Carrier,
    report_token: str,
    postbacks: list[bytes],
    postback_app: None,
    stack: Stack,
    log_lines: Lines,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a saved template (its N003 told already)
    mms_id = save(client)
    assert len(queued_postbacks(stack)) == 1
    # When it is sent with a client-reference, delivered, reported and told
    with phase(log_lines) as api_lines:
        tracking = send(client, mms_id, "camp-42")
    send_id = parse_tracking_id(tracking)
    expected = {
        "account": client.account.account_id,
        "mms_id": mms_id,
        "send_id": str(send_id),
        "tracking_id": tracking,
        "client_reference": "camp-42",
    }
    with phase(log_lines) as deliver_lines:
        body = json.dumps({"send_id": send_id})
        assert invoke("deliver", "DeliverFunction", {"Records": [sqs_record(body)]}) == {
            "batchItemFailures": []
        }
    carrier.wait_reports(1)
    _, report_body, content_type = carrier.reports[0]
    event = load_event("report/mm7-unknown-message.json")
    event["body"] = report_body.decode("utf-8")
    event["headers"]["content-type"] = content_type
    with phase(log_lines) as report_lines:
        assert invoke("report", "ReportFunction", event)["statusCode"] == 200
    with phase(log_lines) as outbox_lines:
        bodies = queued_postbacks(stack)
    assert len(bodies) == 2  # N101 (sent) and N102 (delivered)
    records = [sqs_record(b, n) for n, b in enumerate(bodies)]
    with phase(log_lines) as postback_lines:
        assert invoke("postback", "PostbackFunction", {"Records": records}) == {
            "batchItemFailures": []
        }
    assert len(postbacks) == 2

    # Then the API's answer line carries every id, and its action
    [answered] = [line for line in api_lines if line["message"] == "answered"]
    assert ids_of(answered) == {**expected, "action": "sendSavedMMS"}
    # every line of the request carries the action and the client-reference at least
    assert all(line.get("action") == "sendSavedMMS" for line in api_lines), api_lines
    assert all(line.get("client_reference") == "camp-42" for line in api_lines), api_lines
    # and every line of deliver, report, the outbox relay and the postbacks carries them all
    for action, lines, messages in (
        ("deliver", deliver_lines, {"adapted", "submitted", "delivered"}),
        ("report", report_lines, {"delivery report"}),
        ("relay", outbox_lines, {"postback published"}),
        ("postback", postback_lines, {"postback delivered"}),
    ):
        assert messages <= {line["message"] for line in lines}, (action, lines)
        for line in lines:
            assert ids_of(line) == {**expected, "action": action}, line
    # The deliver line says which rendition the handset got; the postback lines their attempt
    [adapted] = [line for line in deliver_lines if line["message"] == "adapted"]
    assert "bytes on the air" in adapted["rendition"]
    assert {line["attempt"] for line in postback_lines} == {1}
    # and nothing is left in scope once an invocation is over
    assert current_ids() == {}
    # The postbacks are counted per code where published and where delivered
    points = emitted(capsys.readouterr().out)
    for metric in ("PostbacksPublished", "Postbacks", "PostbacksDelivered"):
        for code in ("N101", "N102"):
            assert (metric, {"service": "mmsapi", "code": code}) in points, (metric, points)
    assert all("account" not in dims for _, dims in points)


def test_ids_do_not_leak_into_the_next_record_of_a_batch(
    client: Client,
    carrier: Carrier,
    stack: Stack,
    postback_app: None,
    log_lines: Lines,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given two sends of different client-references, one queue batch for both
    mms_id = save(client)
    assert len(queued_postbacks(stack)) == 1  # its N003
    first, second = send(client, mms_id, "first"), send(client, mms_id, "second")
    ids = [parse_tracking_id(first), parse_tracking_id(second)]
    records = [sqs_record(json.dumps({"send_id": i}), n) for n, i in enumerate(ids)]
    # When the deliver function handles the batch
    with phase(log_lines) as lines:
        invoke("deliver", "DeliverFunction", {"Records": records})
    # Then each line carries the ids of its own record only
    by_send = {str(ids[0]): (first, "first"), str(ids[1]): (second, "second")}
    assert {line["send_id"] for line in lines} == set(by_send)
    for line in lines:
        assert (line["tracking_id"], line["client_reference"]) == by_send[line["send_id"]]
    # And the postbacks of both, handled concurrently in one batch, keep apart too
    bodies = queued_postbacks(stack)
    records = [sqs_record(b, n, receive_count=2) for n, b in enumerate(bodies)]
    with phase(log_lines) as told, pytest.raises(BatchFailedError):
        invoke("postback", "PostbackFunction", {"Records": records})  # both refused: retried
    assert len(told) == 2, told  # the account's URL refuses: one failed attempt each
    for line in told:
        assert line["message"] == "postback attempt failed"
        assert line["attempt"] == 2
        assert line["event_id"] == f"send-{line['send_id']}-N101", line
        assert line["tracking_id"] == by_send[line["send_id"]][0]
    assert current_ids() == {}
    failed = ("PostbackAttemptsFailed", {"service": "mmsapi", "code": "N101"})
    assert failed in emitted(capsys.readouterr().out)


def emitted(out: str) -> list[tuple[str, dict[str, str]]]:
    """(metric, dimensions) of every CloudWatch EMF document printed."""
    found = []
    for text in out.splitlines():
        if not text.startswith("{"):
            continue
        document = json.loads(text)
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                for dimension_set in directive["Dimensions"]:
                    found.append((metric["Name"], {k: document[k] for k in dimension_set}))
    return found


def test_api_metrics_carry_the_action_and_the_error_code(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a success, a refusal, and an action nobody knows
    capsys.readouterr()
    save(client)
    wrong_key = "<request><action>sendSavedMMS</action><api-key>wrong</api-key></request>"
    assert api(client, wrong_key)["error-code"] == "E104"
    unknown = f"<request><action>nope</action><api-key>{client.api_key}</api-key></request>"
    assert api(client, unknown)["error-code"] == "E107"
    # Then each data point has the action (and the error code) as its dimensions
    points = emitted(capsys.readouterr().out)
    assert ("Succeeded", {"service": "mmsapi", "action": "saveMMS"}) in points, points
    refused = {"service": "mmsapi", "action": "sendSavedMMS", "code": "E104"}
    assert ("Refused", refused) in points, points
    # an unknown action is one dimension value, never the client's text
    assert ("Refused", {"service": "mmsapi", "action": "none", "code": "E107"}) in points
    assert all("account" not in dims for _, dims in points)


class RecordingProvider:
    """Stands in for X-Ray's recorder: what was annotated, in order."""

    def __init__(self) -> None:
        self.annotations: list[tuple[str, object]] = []

    def put_annotation(self, key: str, value: object) -> None:
        self.annotations.append((key, value))

    @contextmanager
    def in_subsegment(self, name: str | None = None, **_: Any) -> Iterator[Any]:
        yield self

    def put_metadata(self, key: str, value: object, namespace: str = "default") -> None:
        return None


def test_xray_annotations_carry_the_ids_when_tracing_is_on(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given tracing on (as on Lambda), recorded
    provider = RecordingProvider()
    monkeypatch.setattr(tracer, "provider", provider)
    monkeypatch.setattr(tracer, "disabled", False)
    # When a send is accepted
    mms_id = save(client)
    provider.annotations.clear()
    tracking = send(client, mms_id, "traced-1")
    # Then its trace is annotated with every id of the message
    annotated = dict(provider.annotations)
    assert annotated["action"] == "sendSavedMMS"
    assert annotated["account"] == client.account.account_id
    assert annotated["mms_id"] == mms_id
    assert annotated["tracking_id"] == tracking
    assert annotated["send_id"] == str(parse_tracking_id(tracking))
    assert annotated["client_reference"] == "traced-1"


def test_tracing_off_annotates_nothing_and_needs_no_xray_sdk() -> None:
    # Given the tests' environment (no Lambda): tracing is off, nothing breaks
    assert tracer.disabled
    with observability.message_context(account="a", action="b"):
        observability.tag(mms_id=7, client_reference="")  # empty values are left out
        assert current_ids() == {"account": "a", "action": "b", "mms_id": "7"}
    assert current_ids() == {}
    # a service called outside any handler (a test, a tool) leaves no id behind
    observability.tag(account="a")
    assert current_ids() == {}
    # and a fresh interpreter off Lambda never imports the X-Ray SDK's core (its cold start)
    probe = "import sys, mmsapi.observability; print('aws_xray_sdk.core' in sys.modules)"
    env = {"PATH": "/usr/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "1"}
    off = _python(probe, env)
    # while on Lambda with tracing on, the Tracer speaks X-Ray's daemon protocol itself
    # (mmsapi.xray, tests/integration/test_tracing.py), still without the SDK
    on_lambda = {**env, "LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "0"}
    probe = (
        "import sys, mmsapi.observability as o; print(type(o.tracer.provider).__module__, "
        "o.tracer.disabled, 'aws_xray_sdk' in sys.modules)"
    )
    on = _python(probe, on_lambda)
    assert off == "False"
    assert on == "mmsapi.xray False False", on


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(ROOT / "layers" / "common")},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip().splitlines()[-1]
