"""The send queue: sends waiting for delivery (the deliver function reads it).

Kept apart from the sends table's store so that the outbox relay, which only queues,
loads no more than it uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws

# SendMessageBatch takes at most 10 entries.
SQS_BATCH: Final = 10
# SQS's longest DelaySeconds.
MAX_DELAY_SECONDS: Final = 900


class SendQueue:
    """Sends waiting for delivery: the API answers at once, delivery runs behind this."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or get_settings().send_queue_url

    def enqueue(self, send_id: int) -> None:
        if not self.url:
            raise DomainError("no send queue (MMS_SEND_QUEUE_URL) is set")
        try:
            aws.sqs().send_message(QueueUrl=self.url, MessageBody=json.dumps({"send_id": send_id}))
        except ClientError as exc:
            raise DomainError(f"could not queue the send: {exc}") from exc

    def enqueue_ddm_timeout(self, send_id: int, until: int, delay: int) -> None:
        """The timeout of a send's Device Discovery Message: a message that comes back
        after `delay` seconds (at most SQS's 900: the deliver function re-queues what
        is left of a longer wait), naming the epoch second `until` the wait ends."""
        if not self.url:
            raise DomainError("no send queue (MMS_SEND_QUEUE_URL) is set")
        body = json.dumps({"send_id": send_id, "ddm_until": until})
        try:
            aws.sqs().send_message(
                QueueUrl=self.url,
                MessageBody=body,
                DelaySeconds=max(0, min(MAX_DELAY_SECONDS, delay)),
            )
        except ClientError as exc:
            raise DomainError(f"could not queue the discovery's timeout: {exc}") from exc

    def enqueue_many(self, send_ids: Sequence[int]) -> list[int]:
        """Queue sends, up to 10 per call (SendMessageBatch); returns the ids that were
        not queued (their entries failed). DomainError if a call fails as a whole."""
        if not send_ids:
            return []
        if not self.url:
            raise DomainError("no send queue (MMS_SEND_QUEUE_URL) is set")
        failed: list[int] = []
        for start in range(0, len(send_ids), SQS_BATCH):
            chunk = send_ids[start : start + SQS_BATCH]
            entries: list[Any] = [
                {"Id": str(n), "MessageBody": json.dumps({"send_id": send_id})}
                for n, send_id in enumerate(chunk)
            ]
            try:
                answer = aws.sqs().send_message_batch(QueueUrl=self.url, Entries=entries)
            except ClientError as exc:
                raise DomainError(f"could not queue the sends: {exc}") from exc
            failed.extend(chunk[int(entry["Id"])] for entry in answer.get("Failed", []))
        return failed

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Bring a received message back after `seconds` instead of the queue's default."""
        try:
            aws.sqs().change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except ClientError as exc:
            raise DomainError(f"could not delay the retry: {exc}") from exc
