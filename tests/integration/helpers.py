"""Helpers for integration tests: reading answers and the postback queue."""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from local.stack import Stack
from mmsapi.store import aws


def answer(xml: bytes) -> dict[str, str]:
    """The flat fields of an XML answer: {tag: text}."""
    root = etree.fromstring(xml)
    return {child.tag: child.text or "" for child in root}


def postback_events(stack: Stack) -> list[dict[str, Any]]:
    """Every event that reached the postback queue (consumed)."""
    url = stack.physical["PostbackQueue"]
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
