"""The rate limits table: counters that every warm API function shares (one item per
account and window), each claimed with one conditional write.

Items (`key` -> attributes; `expires_at` lets DynamoDB's TTL remove old windows):
- `rate#<account>#<action>#<block>`: tokens leased per second of a 10-second block,
  attributes `s0`..`s9` (the second's last digit);
- `day#<account>#<YYYY-MM-DD>`: tokens leased that UTC day, attribute `n`;
- `last#<account>`: the time of the account's last accepted call, `at_ms`.

A counter counts what was asked for, which may pass its ceiling: a claim succeeds while
the counter is below the ceiling before it, and grants min(asked, ceiling - before).
So one call always answers how many tokens were granted, and no more than the ceiling
is ever granted, whoever asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.dynamo import CONDITION_FAILED, TRANSACTION_CANCELED

BLOCK_SECONDS: Final = 10


@dataclass(frozen=True)
class Counter:
    """Take `asked[attribute]` tokens from each counter of one item, if the counter
    named `gate` is below `ceiling` now. The others are reservations, never refused,
    granted only below `reserve_ceiling` (what is left above it stays for the gates).
    `exact`: only if all of asked[gate] fit below the ceiling (in a transaction, which
    answers no counts, so what was granted must be known from the condition alone)."""

    key: str
    gate: str
    ceiling: int
    asked: Mapping[str, int]
    expires_at: int
    exact: bool = False
    reserve_ceiling: int = 0


@dataclass(frozen=True)
class Stamp:
    """Set `at_ms` of one item to `now_ms` if the last one is at most `latest_ms`."""

    key: str
    now_ms: int
    latest_ms: int
    expires_at: int


Claim = Counter | Stamp


@dataclass
class Outcome:
    """Which claim was refused (index), or the tokens granted per (key, attribute) and,
    for a single claim, what each counter holds now (all functions' leases)."""

    refused: int | None = None
    granted: dict[tuple[str, str], int] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)


def rate_key(account_id: str, action: str, second: int) -> tuple[str, str]:
    """(item key, attribute) of one second's throughput counter."""
    block, digit = divmod(second, BLOCK_SECONDS)
    return f"rate#{account_id}#{action}#{block}", f"s{digit}"


def day_key(account_id: str, day: str) -> str:
    return f"day#{account_id}#{day}"


def last_key(account_id: str) -> str:
    return f"last#{account_id}"


def _update(claim: Claim, table: str) -> dict[str, Any]:
    if isinstance(claim, Stamp):
        return {
            "TableName": table,
            "Key": {"key": {"S": claim.key}},
            "UpdateExpression": "SET #at = :now, #exp = :exp",
            "ConditionExpression": "attribute_not_exists(#at) OR #at <= :latest",
            "ExpressionAttributeNames": {"#at": "at_ms", "#exp": "expires_at"},
            "ExpressionAttributeValues": {
                ":now": {"N": str(claim.now_ms)},
                ":latest": {"N": str(claim.latest_ms)},
                ":exp": {"N": str(claim.expires_at)},
            },
        }
    names = {"#exp": "expires_at", "#gate": claim.gate}
    room = claim.ceiling - claim.asked[claim.gate] if claim.exact else claim.ceiling - 1
    values: dict[str, Any] = {":exp": {"N": str(claim.expires_at)}, ":room": {"N": str(room)}}
    adds = []
    for n, (attribute, amount) in enumerate(sorted(claim.asked.items())):
        names[f"#a{n}"] = attribute
        values[f":a{n}"] = {"N": str(amount)}
        adds.append(f"#a{n} :a{n}")
    return {
        "TableName": table,
        "Key": {"key": {"S": claim.key}},
        "UpdateExpression": f"SET #exp = :exp ADD {', '.join(adds)}",
        "ConditionExpression": "attribute_not_exists(#gate) OR #gate <= :room",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


class LimitStore:
    def __init__(self, table: str | None = None) -> None:
        self.table = table or get_settings().limits_table

    def claim(self, claims: Sequence[Claim]) -> Outcome:
        """Make every claim or none, in one call: an UpdateItem for one claim (which
        answers the counters, so it may ask for many tokens), a TransactWriteItems for
        several (which answers nothing: its counters must be `exact`)."""
        if len(claims) == 1:
            return self._one(claims[0])
        return self._all(claims)

    def _one(self, claim: Claim) -> Outcome:
        try:
            got = aws.dynamodb().update_item(
                **_update(claim, self.table),
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == CONDITION_FAILED:
                return Outcome(refused=0)
            raise DomainError(f"rate limit claim failed: {exc}") from exc
        if isinstance(claim, Stamp):
            return Outcome()
        counters = got.get("Attributes", {})
        outcome = Outcome()
        for attribute, asked in claim.asked.items():
            now = int(counters[attribute]["N"])
            outcome.counts[(claim.key, attribute)] = now
            before = now - asked  # what all functions had asked for before this claim
            ceiling = claim.ceiling if attribute == claim.gate else claim.reserve_ceiling
            outcome.granted[(claim.key, attribute)] = max(0, min(asked, ceiling - before))
        return outcome

    def _all(self, claims: Sequence[Claim]) -> Outcome:
        items = [{"Update": _update(claim, self.table)} for claim in claims]
        try:
            aws.dynamodb().transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == TRANSACTION_CANCELED:
                reasons = exc.response.get("CancellationReasons", [])
                for n, reason in enumerate(reasons):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        return Outcome(refused=n)
            raise DomainError(f"rate limit claim failed: {exc}") from exc
        # Each gate had room for all it asked (exact claims): all of it was granted.
        granted = {(c.key, c.gate): c.asked[c.gate] for c in claims if isinstance(c, Counter)}
        return Outcome(granted=granted)
