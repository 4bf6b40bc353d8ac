"""The SQS event sources of template.yaml, polled the way Lambda polls them.

Each AWS::Lambda::EventSourceMapping of the translated template (an SQS event of a
function) is a QueueSource; a QueuePoller thread receives its
messages, hands them to the function as one event, and deletes the ones that
succeeded. Failed messages come back after the queue's visibility timeout: that is
the retry policy.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from local.functions import LocalFunction
from local.stack import Stack

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

POLL_WAIT_SECONDS = 1  # short long-polls, so that Ctrl-C is quick

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueSource:
    """One SQS event of a function (an event source mapping on AWS)."""

    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    visibility_timeout: str


def queue_sources(stack: Stack) -> tuple[list[QueueSource], list[str]]:
    """The SQS event source mappings, and a note for each other trigger not emulated."""
    sources: list[QueueSource] = []
    skipped: list[str] = []
    by_arn = {arn: logical_id for logical_id, arn in stack.arns.items()}
    functions = set(stack.function_ids())
    for logical_id, resource in stack.template["Resources"].items():
        kind = resource.get("Type")
        raw = resource.get("Properties", {})
        if kind == "AWS::SNS::Subscription" and raw.get("Protocol") == "lambda":
            skipped.append(f"{logical_id} (SNS to a function) is not emulated locally")
        if kind != "AWS::Lambda::EventSourceMapping":
            continue
        function = raw.get("FunctionName", {}).get("Ref")  # SAM writes !Ref <function>
        props = stack.resolve(raw)
        if function not in functions or str(props.get("Enabled", True)).lower() == "false":
            continue
        source_arn = str(props.get("EventSourceArn"))
        if ":dynamodb:" in source_arn:
            continue  # a table stream: local.streams polls it
        queue = by_arn.get(source_arn)
        if queue is None or queue not in stack.physical:
            skipped.append(f"{logical_id}: {props.get('EventSourceArn')} is not a local queue")
            continue
        queue_props = stack.resolve(stack.template["Resources"][queue].get("Properties", {}))
        sources.append(
            QueueSource(
                function=function,
                queue_url=stack.physical[queue],
                queue_arn=stack.arns[queue],
                batch_size=max(1, min(10, int(props.get("BatchSize", 10)))),
                report_failures="ReportBatchItemFailures"
                in (props.get("FunctionResponseTypes") or []),
                visibility_timeout=str(queue_props.get("VisibilityTimeout", 30)),
            )
        )
    return sources, skipped


def sqs_event(messages: Iterable[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """A Lambda event from SQS messages, shaped like the event source mapping's."""
    records = []
    for message in messages:
        attributes = {str(k): str(v) for k, v in message.get("Attributes", {}).items()}
        message_attributes: dict[str, Any] = {}
        for name, value in message.get("MessageAttributes", {}).items():
            item: dict[str, Any] = {
                "dataType": value.get("DataType", "String"),
                "stringListValues": [],
                "binaryListValues": [],
            }
            if "StringValue" in value:
                item["stringValue"] = value["StringValue"]
            if "BinaryValue" in value:
                item["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
            message_attributes[name] = item
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message.get("Body", ""),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def failed_message_ids(result: Any, message_ids: list[str], report_failures: bool) -> set[str]:
    """The messages to leave on the queue, as Lambda reads a function's answer."""
    if not report_failures or result is None:
        return set()
    if not isinstance(result, dict):
        return set(message_ids)  # an answer Lambda cannot read fails the batch
    failures = result.get("batchItemFailures") or []
    failed: set[str] = set()
    for failure in failures if isinstance(failures, list) else [None]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in message_ids:
            return set(message_ids)  # an unknown or empty identifier fails the whole batch
        failed.add(identifier)
    return failed


class QueuePoller(threading.Thread):
    """Lambda's SQS event source mapping: receive, invoke, delete what succeeded."""

    def __init__(
        self, source: QueueSource, function: LocalFunction, stop: threading.Event, region: str
    ) -> None:
        super().__init__(name=f"poll-{source.function}", daemon=True)
        self.source = source
        self.function = function
        self.stop = stop
        self.region = region

    def run(self) -> None:
        sqs: SQSClient = boto3.session.Session().client("sqs", region_name=self.region)
        while not self.stop.is_set():
            try:
                # Lambda polls with the function's role: the gate checks it so.
                with self.function.acting():
                    answer = sqs.receive_message(
                        QueueUrl=self.source.queue_url,
                        MaxNumberOfMessages=self.source.batch_size,
                        WaitTimeSeconds=POLL_WAIT_SECONDS,
                        MessageSystemAttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    )
            except (BotoCoreError, ClientError) as exc:
                if not self.stop.is_set():
                    log.warning("polling %s failed: %s", self.source.queue_url, exc)
                    self.stop.wait(1)
                continue
            messages = answer.get("Messages", [])
            if messages:
                try:
                    self.deliver(sqs, messages)
                except Exception:  # the poller outlives any one batch
                    log.exception("delivering a batch to %s failed", self.function.logical_id)

    def deliver(self, sqs: SQSClient, messages: list[MessageTypeDef]) -> None:
        ids = [message["MessageId"] for message in messages]
        event = sqs_event(messages, self.source.queue_arn, self.region)
        try:
            result = self.function.invoke(event)
        except Exception:
            log.exception(
                "%s failed on %d message(s); they come back after %s s",
                self.function.logical_id,
                len(messages),
                self.source.visibility_timeout,
            )
            return
        failed = failed_message_ids(result, ids, self.source.report_failures)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            with self.function.acting():
                sqs.delete_message_batch(
                    QueueUrl=self.source.queue_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                        for index, message in enumerate(done)
                    ],
                )
        if failed:
            log.info(
                "%s: %d message(s) failed; they come back after the queue's "
                "visibility timeout (%s s)",
                self.function.logical_id,
                len(failed),
                self.source.visibility_timeout,
            )
