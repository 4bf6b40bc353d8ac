"""mms-id allocation: 64-bit ids taken from a counter item in blocks.

Each process reserves a block of ids with one atomic ADD, then hands them out
from memory, so the counter item sees one write per block, not per request.
"""

from __future__ import annotations

import threading

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws

# Ids start above this so that they never look like the documents' small examples.
ID_BASE = 100_000
MMS_IDS = "mms-id"
SEND_IDS = "send-id"


class IdAllocator:
    def __init__(
        self, counter: str = MMS_IDS, table: str | None = None, block: int | None = None
    ) -> None:
        self.counter = counter
        self.table = table or get_settings().counters_table
        self.block = block or get_settings().id_block_size
        self._next = 0
        self._end = 0
        self._lock = threading.Lock()

    def next_id(self) -> int:
        with self._lock:
            if self._next >= self._end:
                self._end = self._reserve()
                self._next = self._end - self.block
            self._next += 1
            return ID_BASE + self._next

    def _reserve(self) -> int:
        try:
            answer = aws.dynamodb().update_item(
                TableName=self.table,
                Key={"name": {"S": self.counter}},
                UpdateExpression="ADD #v :n",
                ExpressionAttributeNames={"#v": "value"},
                ExpressionAttributeValues={":n": {"N": str(self.block)}},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            raise DomainError(f"id allocation failed: {exc}") from exc
        return int(answer["Attributes"]["value"]["N"])
