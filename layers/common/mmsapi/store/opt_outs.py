"""Opt-outs per account (STOP, START), and the record of every keyword reply (compliance).

One table, two kinds of item under the account id (the partition key), told apart by
the sort key `entry`:

- `number#<digits>`: the number opted out; present = sends to it are refused with E114.
  A send checks it with a ConditionCheck inside the TransactWriteItems that stores it
  (store/sends.py): no AWS call is added per send, and any number of numbers may opt
  out (a list in the account item would meet DynamoDB's 400 KB).
- `event#<source>-<id>`: one per STOP, START or HELP received (time, number, keyword,
  action, source sms|mms, shortcode, message id, the reply's gateway id once sent).
  Written in the same transaction as the opt-out it causes, on condition that it is
  new: a message received again (an MMSC's resend, SNS's retry) changes nothing twice.
  Its reply is claimed (`replying_at`, a conditional UpdateItem) before it is sent, so
  the same message delivered twice at the same time is answered once.

The table has point-in-time recovery: the events are the account's compliance record.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo

NUMBER: Final = "number#"
REPLY_CLAIM_SECONDS: Final = 60  # longer than a reply takes (the SMS gateway's 15 s timeout)
EVENT: Final = "event#"


class Action(StrEnum):
    OPT_OUT = "opt-out"
    OPT_IN = "opt-in"
    HELP = "help"


class OptedOutError(DomainError):
    """The recipient opted out of the account's messages: nothing was written (E114)."""


@dataclass(frozen=True)
class KeywordEvent:
    """One STOP/START/HELP an account received."""

    account_id: str
    number: str  # the phone, E.164 digits without '+'
    action: Action
    keyword: str  # the word as matched, lower case
    source: str  # "sms" or "mms"
    shortcode: str  # the account's code the phone wrote to
    message_id: str  # MMS: the mo-id; SMS: End User Messaging's inboundMessageId
    event_id: str  # unique per received message: the MO's derived id
    at: str  # ISO 8601, when it was processed (here; orders the record)
    reply_id: str = ""  # the reply SMS's gateway id (or "refused: ...") once sent
    received_at: str = ""  # ISO 8601, when the carrier received it (SNS Timestamp, MM7
    # TimeStamp), when it said

    @property
    def entry(self) -> str:
        return f"{EVENT}{self.source}-{self.event_id}"


def _number_key(account_id: str, number: str) -> dict[str, Any]:
    return {"account_id": {"S": account_id}, "entry": {"S": NUMBER + number}}


def not_opted_out(account_id: str, number: str, table: str | None = None) -> dict[str, Any]:
    """The TransactWriteItems part that holds only while the number has not opted out."""
    return {
        "ConditionCheck": {
            "TableName": table or get_settings().opt_outs_table,
            "Key": _number_key(account_id, number),
            "ConditionExpression": "attribute_not_exists(entry)",
        }
    }


def _event_item(event: KeywordEvent) -> dict[str, Any]:
    item = {
        "account_id": {"S": event.account_id},
        "entry": {"S": event.entry},
        "number": {"S": event.number},
        "action": {"S": event.action.value},
        "keyword": {"S": event.keyword},
        "source": {"S": event.source},
        "shortcode": {"S": event.shortcode},
        "message_id": {"S": event.message_id},
        "event_id": {"S": event.event_id},
        "at": {"S": event.at},
    }
    if event.reply_id:
        item["reply_id"] = {"S": event.reply_id}
    if event.received_at:
        item["received_at"] = {"S": event.received_at}
    return item


def _event_of(item: dict[str, Any]) -> KeywordEvent:
    return KeywordEvent(
        account_id=item["account_id"]["S"],
        number=item["number"]["S"],
        action=Action(item["action"]["S"]),
        keyword=item["keyword"]["S"],
        source=item["source"]["S"],
        shortcode=item["shortcode"]["S"],
        message_id=item["message_id"]["S"],
        event_id=item["event_id"]["S"],
        at=item["at"]["S"],
        reply_id=item.get("reply_id", {}).get("S", ""),
        received_at=item.get("received_at", {}).get("S", ""),
    )


class OptOutStore:
    def __init__(self, table: str | None = None) -> None:
        self.table = table or get_settings().opt_outs_table

    def record(self, event: KeywordEvent) -> bool:
        """Record the event and its opt-out or opt-in, both or neither. False when this
        message's event is recorded already (nothing written)."""
        new = {"ConditionExpression": "attribute_not_exists(entry)"}
        parts: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": _event_item(event), **new}}
        ]
        key = _number_key(event.account_id, event.number)
        if event.action is Action.OPT_OUT:
            state = {**key, "at": {"S": event.at}, "keyword": {"S": event.keyword}}
            state["source"] = {"S": f"{event.source} {event.shortcode} {event.message_id}"}
            parts.append({"Put": {"TableName": self.table, "Item": state}})
        elif event.action is Action.OPT_IN:
            parts.append({"Delete": {"TableName": self.table, "Key": key}})
        return not dynamo.transact_write_failed(parts, what="opt-out")

    def event(self, account_id: str, entry: str) -> KeywordEvent | None:
        key = {"account_id": {"S": account_id}, "entry": {"S": entry}}
        item = dynamo.get_item(self.table, key, what="opt-out event")
        return _event_of(item) if item else None

    def claim_reply(self, event: KeywordEvent, now: float | None = None) -> bool:
        """Claim the event's reply (UpdateItem): False when it is sent, or claimed less than
        REPLY_CLAIM_SECONDS ago (the same message, delivered twice at once, replies now).
        A claim older than that is taken over: its holder died before noting the reply."""
        now = time.time() if now is None else now
        try:
            aws.dynamodb().update_item(
                TableName=self.table,
                Key={"account_id": {"S": event.account_id}, "entry": {"S": event.entry}},
                UpdateExpression="SET replying_at = :now",
                ConditionExpression=(
                    "attribute_exists(entry) AND attribute_not_exists(reply_id)"
                    " AND (attribute_not_exists(replying_at) OR replying_at < :stale)"
                ),
                ExpressionAttributeValues={
                    ":now": {"N": f"{now:.3f}"},
                    ":stale": {"N": f"{now - REPLY_CLAIM_SECONDS:.3f}"},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise DomainError(f"opt-out reply claim failed: {exc}") from exc
        return True

    def release_reply(self, event: KeywordEvent) -> None:
        """Give a claim back (the reply failed): the message received again replies."""
        with contextlib.suppress(ClientError):  # else it goes stale (REPLY_CLAIM_SECONDS)
            aws.dynamodb().update_item(
                TableName=self.table,
                Key={"account_id": {"S": event.account_id}, "entry": {"S": event.entry}},
                UpdateExpression="REMOVE replying_at",
                ConditionExpression="attribute_exists(entry)",
            )

    def replied(self, event: KeywordEvent, reply_id: str) -> None:
        """Note the reply's id on the event: a message received again is not replied to twice."""
        dynamo.put_item(self.table, _event_item(replace(event, reply_id=reply_id)), what="opt-out")

    def opted_out(self, account_id: str, number: str) -> bool:
        key = _number_key(account_id, number)
        return dynamo.get_item(self.table, key, what="opt-out") is not None

    def events(self, account_id: str, number: str = "") -> list[KeywordEvent]:
        """Every recorded event of the account (of one number), oldest first."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "account_id = :a AND begins_with(entry, :e)",
            "ExpressionAttributeValues": {":a": {"S": account_id}, ":e": {"S": EVENT}},
        }
        if number:
            query["FilterExpression"] = "#n = :n"
            query["ExpressionAttributeNames"] = {"#n": "number"}
            query["ExpressionAttributeValues"][":n"] = {"S": number}
        found: list[KeywordEvent] = []
        try:
            for page in aws.dynamodb().get_paginator("query").paginate(**query):
                found.extend(_event_of(item) for item in page["Items"])
        except ClientError as exc:
            raise DomainError(f"opt-out events read failed: {exc}") from exc
        return sorted(found, key=lambda e: (e.at, e.entry))

    def numbers(self, account_id: str) -> list[str]:
        """The numbers opted out of the account now."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "account_id = :a AND begins_with(entry, :e)",
            "ExpressionAttributeValues": {":a": {"S": account_id}, ":e": {"S": NUMBER}},
        }
        found: list[str] = []
        try:
            for page in aws.dynamodb().get_paginator("query").paginate(**query):
                found.extend(item["entry"]["S"].removeprefix(NUMBER) for item in page["Items"])
        except ClientError as exc:
            raise DomainError(f"opt-outs read failed: {exc}") from exc
        return found
