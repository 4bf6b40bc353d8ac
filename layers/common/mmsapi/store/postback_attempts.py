"""Each postback's delivery attempts, kept for `mmsapi-admin trace`.

One item per postback id (X-MMS-Postback-Id), updated on every attempt with its number,
outcome and time: one UpdateItem per attempt, nothing read on the delivery path. Items
expire after RETAIN_DAYS (TTL).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo

RETAIN_DAYS: Final = 30
# The outcome is text the receiver influenced (a reason): keep it short.
MAX_OUTCOME_CHARS: Final = 200


@dataclass(frozen=True)
class Attempts:
    postback_id: str
    attempts: int  # the highest attempt number seen
    outcome: str  # of that attempt: "delivered (HTTP 200)", "failed: timed out", ...
    at: float  # epoch seconds of that attempt


class PostbackAttemptsStore:
    def __init__(self, table: str | None = None) -> None:
        self.table = table or get_settings().postback_attempts_table

    def record(self, postback_id: str, attempt: int, outcome: str) -> None:
        """Note one attempt; an older attempt seen late does not overwrite a newer one."""
        now = time.time()
        try:
            aws.dynamodb().update_item(
                TableName=self.table,
                Key={"postback_id": {"S": postback_id}},
                UpdateExpression="SET attempts = :n, outcome = :o, at_time = :t, expires_at = :e",
                ConditionExpression="attribute_not_exists(attempts) OR attempts <= :n",
                ExpressionAttributeValues={
                    ":n": {"N": str(attempt)},
                    ":o": {"S": outcome[:MAX_OUTCOME_CHARS]},
                    ":t": {"N": f"{now:.3f}"},
                    ":e": {"N": str(int(now) + RETAIN_DAYS * 86_400)},
                },
            )
        except aws.dynamodb().exceptions.ConditionalCheckFailedException:
            return  # a later attempt was recorded first

    def get_many(self, postback_ids: Sequence[str]) -> dict[str, Attempts]:
        keys = [{"postback_id": {"S": pid}} for pid in dict.fromkeys(postback_ids)]
        items = dynamo.batch_get(self.table, keys, what="postback attempts")
        return {
            item["postback_id"]["S"]: Attempts(
                postback_id=item["postback_id"]["S"],
                attempts=int(item["attempts"]["N"]),
                outcome=item["outcome"]["S"],
                at=float(item["at_time"]["N"]),
            )
            for item in items
        }
