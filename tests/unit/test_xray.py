"""mmsapi.xray: X-Ray subsegment documents sent to the daemon without the X-Ray SDK."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.config import Config
from botocore.stub import Stubber

from mmsapi import xray
from tests.xray_daemon import PARENT, ROOT, Daemon, chain, trace_header


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    got = Daemon()
    yield got
    got.close()


def provider_for(daemon: Daemon, header: str | None = None) -> xray.XRayProvider:
    address = xray.parse_daemon_address(daemon.address)
    return xray.XRayProvider(xray.Emitter(address), lambda: header or trace_header())


def test_lambdas_trace_header_and_daemon_address_are_read_as_documented() -> None:
    got = xray.parse_trace_header(f"Root={ROOT};Parent={PARENT};Sampled=1;Lineage=a:1")
    assert got == xray.TraceContext(ROOT, PARENT, True)
    assert xray.parse_trace_header(f"Parent={PARENT};Sampled=0;Root={ROOT}") == (
        xray.TraceContext(ROOT, PARENT, False)
    )
    assert xray.parse_trace_header(f"Root={ROOT};Sampled=1") is None  # no parent: no trace
    assert xray.parse_trace_header("Root=nope;Parent=x") is None
    assert xray.parse_trace_header(None) is None
    # "host:port", or the UDP half of "tcp:... udp:..." in either order
    assert xray.parse_daemon_address("169.254.79.129:2000") == ("169.254.79.129", 2000)
    both = "tcp:127.0.0.1:2000 udp:127.0.0.2:2001"
    assert xray.parse_daemon_address(both) == ("127.0.0.2", 2001)
    assert xray.parse_daemon_address("udp:10.0.0.1:3000 tcp:10.0.0.2:2000") == ("10.0.0.1", 3000)
    assert xray.parse_daemon_address("") == ("127.0.0.1", 2000)
    for wrong in ("localhost", "tcp:1.2.3.4:1 tcp:1.2.3.4:2", "a:b", "1 2 3"):
        with pytest.raises(ValueError, match="invalid X-Ray daemon address"):
            xray.parse_daemon_address(wrong)


def test_subsegments_nest_under_lambdas_segment_and_record_failures(daemon: Daemon) -> None:
    # Given a provider for an invocation whose header is sampled
    provider = provider_for(daemon)
    # When a handler's subsegment holds one that fails
    with provider.in_subsegment("## handler") as handler:
        handler.put_annotation("ColdStart", True)
        with pytest.raises(KeyError):
            _fail_in(provider)
    # Then both are sent, each as its own document, linked to Lambda's segment
    work, outer = daemon.documents()
    assert (work["name"], outer["name"]) == ("## work", "## handler")
    assert work["trace_id"] == outer["trace_id"] == ROOT
    assert work["parent_id"] == outer["id"]
    assert outer["parent_id"] == PARENT
    assert chain(work, {d["id"]: d for d in (work, outer)}) == ["## work", "## handler"]
    assert outer["annotations"] == {"ColdStart": True}
    assert work["annotations"] == {"tracking_id": "TU1T"}
    # the failure is a fault with its cause (type, message, stack); the handler caught it
    assert work["fault"] is True
    assert "fault" not in outer
    [exception] = work["cause"]["exceptions"]
    assert exception["type"] == "KeyError"
    assert "boom" in exception["message"]
    labels = [frame["label"] for frame in exception["stack"]]
    assert "_fail_in" in labels
    assert xray.current() is None


def _fail_in(provider: xray.XRayProvider) -> None:
    with provider.in_subsegment("## work"):
        provider.put_annotation("tracking_id", "TU1T")
        raise KeyError("boom")


def test_an_unsampled_or_missing_trace_sends_nothing(daemon: Daemon) -> None:
    for header in (trace_header(sampled=False), "Root=garbage"):
        provider = provider_for(daemon, header)
        with provider.in_subsegment("## handler"), provider.in_subsegment("## inner"):
            provider.put_annotation("account", "a")
    assert daemon.datagrams() == []


def test_threads_started_with_their_context_nest_under_their_own_record(daemon: Daemon) -> None:
    # Given a handler whose records are handled in threads, each from its own subsegment
    provider = provider_for(daemon)

    def record(number: int) -> None:
        with provider.in_subsegment(f"## record {number}"):
            provider.put_annotation("tracking_id", f"T{number}")
            context = contextvars.copy_context()
            worker = threading.Thread(target=context.run, args=(work, number))
            worker.start()
            worker.join()

    def work(number: int) -> None:
        with provider.in_subsegment(f"## delivery {number}"):
            provider.put_annotation("attempt", number)

    with provider.in_subsegment("## handler"):
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(record, n))
            for n in (1, 2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # Then each delivery is a child of its own record, each record of the handler
    docs = daemon.documents()
    by_id = {d["id"]: d for d in docs}
    by_name = {d["name"]: d for d in docs}
    for n in (1, 2):
        assert chain(by_name[f"## delivery {n}"], by_id) == [
            f"## delivery {n}",
            f"## record {n}",
            "## handler",
        ]
        assert by_name[f"## record {n}"]["annotations"] == {"tracking_id": f"T{n}"}
        assert by_name[f"## delivery {n}"]["annotations"] == {"attempt": n}


def test_annotations_follow_xrays_rules() -> None:
    segment = xray.Subsegment("s", ROOT, PARENT, True)
    segment.put_annotation("client-reference id", "x" * 300)
    segment.put_annotation("count", 3)
    segment.put_annotation("ok", False)
    segment.put_annotation("ratio", float("nan"))  # no NaN in JSON: kept as text
    assert segment.annotations == {
        "client_reference_id": "x" * 250,
        "count": 3,
        "ok": False,
        "ratio": "nan",
    }
    for n in range(60):
        segment.put_annotation(f"k{n}", n)
    assert len(segment.annotations) == 50


def test_a_document_over_64_kb_loses_its_metadata_and_is_never_an_error(
    daemon: Daemon,
) -> None:
    # Given a subsegment carrying a large response as metadata
    provider = provider_for(daemon)
    with provider.in_subsegment("## handler") as handler:
        handler.put_metadata("handler response", "x" * 100_000, "mmsapi")
        handler.put_annotation("tracking_id", "TU1T")
    # Then it is sent without the metadata, its annotations kept
    [doc] = daemon.documents()
    assert "metadata" not in doc
    assert doc["annotations"] == {"tracking_id": "TU1T"}
    # And one that cannot be made small enough is dropped and counted, quietly
    big = xray.Subsegment("big", ROOT, PARENT, True)
    big.aws = {"operation": "x" * 70_000}
    big.close()
    assert provider.emitter.send(big.document()) is False
    assert provider.emitter.dropped == 1
    assert daemon.datagrams() == []


def test_no_daemon_never_fails_the_work() -> None:
    # Given an address nothing can be sent to
    provider = xray.XRayProvider(xray.Emitter(("256.0.0.1", 2000)), trace_header)
    # When subsegments close, the work goes on and the loss is counted
    with provider.in_subsegment("## handler"), provider.in_subsegment("## inner"):
        pass
    assert provider.emitter.dropped == 2
    assert provider.emitter.sent == 0


def test_urls_lose_their_query_and_secrets_everywhere_in_a_document(daemon: Daemon) -> None:
    assert xray.public_url("https", "cb.example.com", 443, "/hook?token=abc#x") == (
        "https://cb.example.com/hook"
    )
    assert xray.public_url("http", "10.0.0.1", 8080, "") == "http://10.0.0.1:8080/"
    assert xray.public_url("https", "::1", 8443, "/a") == "https://[::1]:8443/a"
    provider = provider_for(daemon)
    with provider.in_subsegment("## handler") as handler:
        answer = "<url>https://m.example.com/v/12.s3cr3tview?X-Amz-Signature=abcdef</url>"
        handler.put_metadata("handler response", {"body": answer, "api-key": "k3y-v4lue"})
    raw = b"".join(daemon.datagrams())
    assert b"X-Amz-Signature" not in raw
    assert b"abcdef" not in raw
    assert b"s3cr3tview" not in raw
    assert b"k3y-v4lue" not in raw


@pytest.mark.parametrize(
    "url",
    [
        "https://h.example.com/p?x=1\u00e9&token2=LEAK",  # JSON would escape the é
        'https://h.example.com/p?x="q"&token2=LEAK',  # and the quote
        "/pb?access_token=LEAK",  # a path without its scheme and host
    ],
)
def test_a_query_is_cut_wherever_json_would_escape_it(daemon: Daemon, url: str) -> None:
    provider = provider_for(daemon)
    with provider.in_subsegment("## handler") as handler:
        handler.put_metadata("request", {"url": url.replace("\\u00e9", "\u00e9")})
    raw = b"".join(daemon.datagrams())
    assert b"LEAK" not in raw
    assert b"/p" in raw or b"/pb" in raw


def test_metadata_nested_without_end_never_fails_the_function(daemon: Daemon) -> None:
    deep: list[object] = []
    for _ in range(5_000):
        deep = [deep]
    provider = provider_for(daemon)
    with provider.in_subsegment("## handler") as handler:
        handler.put_metadata("handler response", deep)
        handler.put_annotation("tracking_id", "TU1T")
    [doc] = daemon.documents()
    assert doc["annotations"] == {"tracking_id": "TU1T"}


@pytest.fixture
def recording(daemon: Daemon) -> Iterator[xray.XRayProvider]:
    provider = provider_for(daemon)
    provider.patch(["botocore"])
    yield provider
    xray.stop_recording()


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def answering(client: Any, answers: list[tuple[int, bytes]]) -> list[dict[str, str]]:
    """The client's requests answered in turn, as sent on the wire: their headers."""
    sent: list[dict[str, str]] = []

    def send(request: Any, **_: Any) -> AWSResponse:
        sent.append(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        )
        status, body = answers.pop(0)
        headers = {"x-amzn-RequestId": f"REQ{len(sent)}", "content-length": str(len(body))}
        wire = HTTPHeaders()
        for name, value in headers.items():
            wire[name] = value
        return AWSResponse(request.url, status, wire, _Body(body))

    client.meta.events.register("before-send", send)
    return sent


def test_an_aws_call_is_a_subsegment_and_carries_its_trace_header(
    recording: xray.XRayProvider, daemon: Daemon
) -> None:
    # Given a client created after patching, whose requests get these answers
    client = boto3.session.Session(region_name="us-east-1").client(
        "dynamodb",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(retries={"total_max_attempts": 1}),
    )
    refused = b'{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}'
    sent = answering(client, [(200, b'{"Item": {}}'), (400, refused)])
    # When a handler reads, then fails to write
    with recording.in_subsegment("## handler"):
        client.get_item(TableName="mmsapi-sends", Key={"id": {"S": "1"}})
        with pytest.raises(client.exceptions.ConditionalCheckFailedException):
            client.put_item(TableName="mmsapi-sends", Item={"id": {"S": "1"}})
    # Then each call is an "aws" subsegment of the handler's, with what it named
    get, put, handler = daemon.documents()
    assert get["name"] == "dynamodb"
    assert get["namespace"] == "aws"
    assert get["parent_id"] == handler["id"]
    assert get["aws"] == {
        "operation": "GetItem",
        "region": "us-east-1",
        "table_name": "mmsapi-sends",
        "request_id": "REQ1",
        "retries": 0,
    }
    assert get["http"]["response"] == {"status": 200, "content_length": 12}
    assert "error" not in get
    assert put["aws"]["operation"] == "PutItem"
    assert put["error"] is True
    assert put["http"]["response"]["status"] == 400
    assert put["cause"]["exceptions"][0]["type"] == "ConditionalCheckFailedException"
    assert put["cause"]["exceptions"][0]["remote"] is True
    # and each request carried the header naming its own subsegment, as the SDK does
    assert sent[0]["X-Amzn-Trace-Id"] == f"Root={ROOT};Parent={get['id']};Sampled=1"
    assert sent[1]["X-Amzn-Trace-Id"] == f"Root={ROOT};Parent={put['id']};Sampled=1"


def test_aws_calls_outside_any_subsegment_record_nothing(
    recording: xray.XRayProvider, daemon: Daemon
) -> None:
    client = boto3.session.Session(region_name="us-east-1").client(
        "sqs", aws_access_key_id="k", aws_secret_access_key="s"
    )
    with Stubber(client) as stub:
        stub.add_response("get_queue_url", {"QueueUrl": "https://q"})
        client.get_queue_url(QueueName="q")
    assert daemon.datagrams() == []
