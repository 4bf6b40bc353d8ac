"""Helpers for integration tests: reading answers and the postback queue."""

from __future__ import annotations

import json
import time
from typing import Any

from lxml import etree

from local.aws_gate import acting_as
from local.stack import Stack
from local.streams import StreamReader, deliver, stream_sources
from mmsapi.services.context import context
from mmsapi.services.outbox import relay
from mmsapi.store import aws
from mmsapi.store.accounts import KEY_CACHE_SECONDS


def account_change_counted() -> None:
    """Wait until an account change just stored counts in every warm function: each one
    trusts what it read for an API key up to KEY_CACHE_SECONDS (well within the 1 s the
    issue allows), so the next request after this sees the change."""
    time.sleep(KEY_CACHE_SECONDS)


def answer(xml: bytes) -> dict[str, str]:
    """The flat fields of an XML answer: {tag: text}."""
    root = etree.fromstring(xml)
    return {child.tag: child.text or "" for child in root}


# One reader per outbox stream: each test's stack has its own.
_READERS: dict[str, StreamReader] = {}
RELAY = "OutboxFunction"


def relay_event(event: dict[str, Any]) -> dict[str, Any]:
    """OutboxFunction's work on one stream event, in-process (its role, its settings)."""
    with acting_as(RELAY):
        ctx = context()
        failed = relay(event["Records"], ctx.outbox, ctx.events, ctx.send_queue)
    return {"batchItemFailures": [{"itemIdentifier": failed}] if failed else []}


def relay_outbox(stack: Stack, max_batches: int = 100) -> int:
    """Run the outbox relay over what its streams (the outbox's, the sends') hold now,
    as Lambda would (batches in order, a failed record read again next time); how many
    records were handed over."""
    handed = 0
    for source in [s for s in stream_sources(stack) if s.function == RELAY]:
        reader = _READERS.setdefault(source.stream_arn, StreamReader(source, stack.region))
        for _ in range(max_batches):
            before = dict(reader.after)
            count = deliver(reader, relay_event, lambda: acting_as(RELAY))
            handed += count
            if not count or reader.after == before:
                break  # nothing new, or a failure: the next call tries again
    return handed


def postback_events(stack: Stack) -> list[dict[str, Any]]:
    """Every event that reached the postback queue (consumed), once the outbox relay
    has published what the outbox holds; each with its postback_id (X-MMS-Postback-Id)
    taken out of its detail."""
    relay_outbox(stack)
    found: list[dict[str, Any]] = []
    for event in drain(stack.physical["PostbackQueue"]):
        # The postback id rides in the detail; tests read it beside the detail.
        event["postback_id"] = event["detail"].pop("postback_id", None)
        found.append(event)
    return found


def drain(url: str) -> list[dict[str, Any]]:
    """Every message body (JSON) waiting in a queue, taken out of it."""
    found: list[dict[str, Any]] = []
    while True:
        got = aws.sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            aws.sqs().delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def bucket_keys(stack: Stack) -> list[str]:
    bucket = stack.physical["MediaBucket"]
    listing = aws.s3().list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listing.get("Contents", [])]
