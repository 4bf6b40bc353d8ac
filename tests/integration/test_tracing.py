"""X-Ray on AWS, without the X-Ray SDK: real handlers, invoked as Lambda invokes them
(LAMBDA_TASK_ROOT, _X_AMZN_TRACE_ID, AWS_XRAY_DAEMON_ADDRESS), against the emulated AWS,
send their subsegment documents to a daemon that is a UDP socket on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from local.stack import Stack
from mmsapi import observability
from mmsapi.observability import tracer
from mmsapi.services.accounts import set_postback
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.conftest import Carrier
from tests.integration.test_trace_logs import invoke, queued_postbacks, save, send, sqs_record
from tests.lambda_context import ROOT
from tests.xray_daemon import PARENT, Daemon, chain, trace_header

pytestmark = pytest.mark.gsi_lag(3600)  # reports find their send by consistent reads

IDS = ("account", "action", "mms_id", "send_id", "tracking_id", "client_reference")
TOKEN = "s3cr3t-postback-t0ken"


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    got = Daemon()
    yield got
    got.close()


def on_lambda(monkeypatch: pytest.MonkeyPatch, daemon_address: str, header: str) -> None:
    """The environment Lambda gives a traced function, and its Tracer as built there."""
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mmsapi-function")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", daemon_address)
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.setattr(tracer, "service", "mmsapi")  # POWERTOOLS_SERVICE_NAME, at import
    observability.configure_tracing()  # Powertools' own rule, as at import on Lambda
    assert not tracer.disabled
    aws.reset()  # clients are made from now on, with the hooks


@pytest.fixture
def traced(stack: Stack, monkeypatch: pytest.MonkeyPatch, daemon: Daemon) -> Iterator[Daemon]:
    """Given tracing on, as on Lambda, for a sampled invocation."""
    on_lambda(monkeypatch, daemon.address, trace_header())
    yield daemon
    observability.configure_tracing(False)
    aws.reset()


def named(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["name"] == name]


def annotated_ids(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.get("annotations", {}).items() if k in IDS}


def test_a_send_is_traced_from_its_handler_to_each_aws_call(client: Client, traced: Daemon) -> None:
    # Given a saved template
    mms_id = save(client)
    traced.documents()
    # When a sendSavedMMS is handled
    tracking = send(client, mms_id, "traced-1")
    docs = traced.documents()
    by_id = {d["id"]: d for d in docs}
    # Then the handler's subsegment hangs from Lambda's segment, with Powertools' annotations
    [handler] = named(docs, "## handler")
    assert handler["parent_id"] == PARENT
    assert isinstance(handler["annotations"]["ColdStart"], bool)
    assert handler["annotations"]["Service"] == "mmsapi"
    # and the request's own subsegment, named after its action, carries every id
    [request] = named(docs, "## sendSavedMMS")
    assert request["parent_id"] == handler["id"]
    assert annotated_ids(request) == {
        "action": "sendSavedMMS",
        "account": client.account.account_id,
        "mms_id": mms_id,
        "send_id": str(parse_tracking_id(tracking)),
        "tracking_id": tracking,
        "client_reference": "traced-1",
    }
    # and each AWS call is an "aws" subsegment inside it, with its operation and resource
    calls = [d for d in docs if d.get("namespace") == "aws"]
    assert calls
    for call in calls:
        assert chain(call, by_id)[-2:] == ["## sendSavedMMS", "## handler"]
        assert call["aws"]["request_id"]
        assert call["aws"]["region"] == "us-east-1"
        assert call["http"]["response"]["status"] == 200
    sends_table = get_settings().sends_table
    written = {
        d["aws"]["operation"]
        for d in calls
        if d["name"] == "dynamodb"
        and sends_table in (d["aws"].get("table_name"), *d["aws"].get("table_names", ()))
    }
    assert written & {"PutItem", "TransactWriteItems", "BatchWriteItem", "UpdateItem"}, calls
    # and no document holds the API key
    assert all(client.api_key.encode() not in raw for raw in traced.raw)


def test_each_record_of_a_batch_is_its_own_subsegment_with_its_own_ids(
    client: Client,
    carrier: Carrier,
    stack: Stack,
    postback_app: None,
    httpserver: HTTPServer,
    traced: Daemon,
) -> None:
    # Given a postback URL holding a token in its query, and two sends
    httpserver.expect_request("/postback").respond_with_data("ok")
    url = httpserver.url_for("/postback") + f"?token={TOKEN}"
    set_postback(client.ctx.accounts, client.account.account_id, url)
    mms_id = save(client)
    queued_postbacks(stack)  # the template's N003
    first, second = send(client, mms_id, "first"), send(client, mms_id, "second")
    references = {first: "first", second: "second"}
    records = [
        sqs_record(json.dumps({"send_id": parse_tracking_id(t)}), n)
        for n, t in enumerate(references)
    ]
    traced.documents()
    # When the deliver function handles both in one batch
    assert invoke("deliver", "DeliverFunction", {"Records": records}) == {"batchItemFailures": []}
    delivered = traced.documents()
    # and the postback function delivers both postbacks, concurrently in threads
    bodies = queued_postbacks(stack)
    assert len(bodies) == 2
    traced.documents()
    postback_records = [sqs_record(body, n) for n, body in enumerate(bodies)]
    assert invoke("postback", "PostbackFunction", {"Records": postback_records}) == {
        "batchItemFailures": []
    }
    told = traced.documents()
    # Then each record is a subsegment of the handler's, annotated with its own ids
    for docs, action in ((delivered, "deliver"), (told, "postback")):
        by_id = {d["id"]: d for d in docs}
        [handler] = named(docs, "## handler")
        scopes = named(docs, f"## {action}")
        assert len(scopes) == 2, [d["name"] for d in docs]
        got = {}
        for scope in scopes:
            assert scope["parent_id"] == handler["id"]
            ids = annotated_ids(scope)
            assert ids["action"] == action
            assert ids["account"] == client.account.account_id
            assert ids["mms_id"] == mms_id
            assert ids["send_id"] == str(parse_tracking_id(ids["tracking_id"]))
            got[ids["tracking_id"]] = ids["client_reference"]
        assert got == references
        # and what each record called (AWS, the carrier, the customer) hangs under it
        for doc in docs:
            if doc.get("namespace"):
                assert chain(doc, by_id)[-2:] in ([f"## {action}", "## handler"],), doc
    # The postbacks are "remote" calls with method, URL (no query) and status
    posted = [d for d in told if d.get("namespace") == "remote"]
    assert len(posted) == 2
    for doc in posted:
        assert doc["name"] == "localhost" or doc["name"] == "127.0.0.1"
        assert doc["http"]["request"] == {"method": "POST", "url": url.split("?")[0]}
        assert doc["http"]["response"]["status"] == 200
    # the MM7 SubmitReqs to the carrier too
    submitted = [d for d in delivered if d.get("namespace") == "remote"]
    assert len(submitted) >= 2
    assert all(d["http"]["request"]["method"] == "POST" for d in submitted)
    # and no token, query or API key is in any document
    for raw in traced.raw:
        assert TOKEN.encode() not in raw
        assert b"?token" not in raw
        assert client.api_key.encode() not in raw


def test_an_unsampled_invocation_sends_nothing(
    client: Client, traced: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Lambda's header for this invocation says Sampled=0
    monkeypatch.setenv("_X_AMZN_TRACE_ID", trace_header(sampled=False))
    # When requests are handled
    mms_id = save(client)
    send(client, mms_id, "unsampled")
    # Then nothing reached the daemon
    assert traced.datagrams() == []


def test_a_dead_daemon_never_fails_a_handler(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a daemon address where nothing listens (a port just closed), then none at all
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gone.bind(("127.0.0.1", 0))
    port = gone.getsockname()[1]
    gone.close()
    try:
        for address in (f"127.0.0.1:{port}", "256.0.0.1:2000"):
            on_lambda(monkeypatch, address, trace_header())
            # When requests are handled, Then they succeed
            mms_id = save(client)
            assert parse_tracking_id(send(client, mms_id, "no-daemon")) is not None
            # the documents went nowhere (into a closed port), or were counted as lost
            emitter = getattr(tracer.provider, "emitter", None)
            assert emitter is not None
            if address.startswith("256."):
                assert emitter.dropped > 0
                assert emitter.sent == 0
            else:
                assert emitter.sent > 0
    finally:
        observability.configure_tracing(False)
        aws.reset()


def test_a_handler_imported_with_tracing_on_never_imports_the_xray_sdk() -> None:
    # Given a fresh interpreter with the environment of a traced Lambda function
    env = {
        "PATH": "/usr/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        "PYTHONPATH": str(ROOT / "layers" / "common"),
    }
    functions = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
    probe = (
        "import importlib.util, json, sys\n"
        f"for name in {functions!r}:\n"
        f"    path = {str(ROOT / 'functions')!r} + '/' + name + '/app.py'\n"
        "    spec = importlib.util.spec_from_file_location('app_' + name, path)\n"
        "    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "from mmsapi.observability import tracer\n"
        "print(json.dumps([type(tracer.provider).__module__, tracer.disabled,"
        " sorted(m for m in sys.modules if m.startswith('aws_xray_sdk'))]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # When every handler is imported, Then tracing is on, through mmsapi.xray, without the SDK
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["mmsapi.xray", False, []]
    assert len(functions) >= 9
