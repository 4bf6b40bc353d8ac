"""The sends table (one item per message to one recipient) and the send queue."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.models import Send, SendStatus, utcnow
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo

CARRIER_INDEX = "by-carrier-message"


class SendStore:
    def __init__(self, table: str | None = None) -> None:
        self.table = table or get_settings().sends_table

    def _item(self, send: Send) -> dict[str, Any]:
        item: dict[str, Any] = {
            "send_id": {"N": str(send.send_id)},
            "account_id": {"S": send.account_id},
            "status": {"S": send.status.value},
            "doc": {"S": send.model_dump_json()},
        }
        if send.carrier_message_id:  # sparse index: only sends the carrier has accepted
            item["carrier_message_id"] = {"S": send.carrier_message_id}
        return item

    def create(self, send: Send) -> None:
        dynamo.create_item(self.table, self._item(send), "send_id", what="send")

    def save(self, send: Send, expected: SendStatus | None = None) -> bool:
        """Write a send; with `expected`, only if its stored status is still that."""
        send.updated_at = utcnow()
        extra: dict[str, Any] = {}
        if expected is not None:
            extra = {
                "ConditionExpression": "#s = :expected",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":expected": {"S": expected.value}},
            }
        return dynamo.put_item(self.table, self._item(send), what="send", **extra)

    def get(self, send_id: int) -> Send | None:
        item = dynamo.get_item(self.table, {"send_id": {"N": str(send_id)}}, what="send")
        return Send.model_validate_json(item["doc"]["S"]) if item else None

    def by_carrier_message_id(self, message_id: str) -> Send | None:
        item = dynamo.query_one(
            self.table, CARRIER_INDEX, "carrier_message_id", message_id, what="send"
        )
        return Send.model_validate_json(item["doc"]["S"]) if item else None


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

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Bring a received message back after `seconds` instead of the queue's default."""
        try:
            aws.sqs().change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except ClientError as exc:
            raise DomainError(f"could not delay the retry: {exc}") from exc
