"""local.queues: SQS event sources polled like Lambda's, against moto's SQS."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.functions import LocalFunction
from local.queues import QueuePoller, QueueSource, failed_message_ids
from local.stack import FunctionSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("result", "report", "failed"),
    [
        ({"batchItemFailures": []}, True, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, True, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zz"}]}, True, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, True, {"a", "b"}),
        (None, True, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, False, set()),
    ],
)
def test_batch_item_failures_are_read_like_lambda(
    result: Any, report: bool, failed: set[str]
) -> None:
    # Given a batch of two messages and the function's answer
    # When the poller reads it
    # Then only the reported messages stay on the queue (all of them if the answer is bad)
    assert failed_message_ids(result, ["a", "b"], report) == failed


@pytest.mark.parametrize("fails", [False, True])
def test_poller_deletes_what_succeeded_and_leaves_the_rest_for_retry(fails: bool) -> None:
    # Given a queue whose failed messages come back at once, holding a good and a bad one
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
        for body in ("good", "bad"):
            sqs.send_message(QueueUrl=url, MessageBody=body)

        def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
            if fails:
                raise RuntimeError("the function crashed")
            bad = [r["messageId"] for r in event["Records"] if r["body"] == "bad"]
            return {"batchItemFailures": [{"itemIdentifier": i} for i in bad]}

        function = LocalFunction(
            FunctionSpec("F", ROOT, "app.handler"), "f", "arn:f", 128, 3, handler=handler
        )
        source = QueueSource("F", url, "arn:aws:sqs:us-east-1:123456789012:q", 10, True, "0")
        poller = QueuePoller(source, function, threading.Event(), "us-east-1")
        # When one batch is delivered
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        poller.deliver(sqs, batch)
        # Then the bad one (or, when the function crashed, both) is received again
        again = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        )["Messages"]
        assert sorted(m["Body"] for m in again) == (["bad", "good"] if fails else ["bad"])
        assert {m["Attributes"]["ApproximateReceiveCount"] for m in again} == {"2"}
