"""The rate limits table: counters that every warm API function shares (one item per
account and window), each claimed with one conditional write.

Items (`key` -> attributes; `expires_at` lets DynamoDB's TTL remove old windows):
- `rate#<account>#<action>#<block>`: tokens asked for per second of a 10-second block,
  on demand in `s0`..`s9` (the second's last digit) and ahead of time (reservations,
  made in an earlier second) in `r0`..`r9`;
- `day#<account>#<YYYY-MM-DD>`: tokens asked for that UTC day, attribute `n`;
- `last#<account>`: the time of the account's last accepted call, `at_ms`.

A counter counts what was asked for, which may pass its ceiling; what was granted is
worked out from the counts the write answers. Reservations are granted up to
`reserve_ceiling` in all and only while the second's on-demand count leaves room for
them; an on-demand claim is granted what is left of the ceiling once the reservations
(as asked, at most `reserve_ceiling`) and earlier on-demand claims are taken off. So
tokens asked ahead and never granted do not block anyone, and no more than the ceiling
is ever granted in a window, whoever asks and in whatever order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.dynamo import CONDITION_FAILED, TRANSACTION_CANCELED

BLOCK_SECONDS: Final = 10
# A single write meeting a transaction on the same item (DynamoDB cancels the write).
TRANSACTION_CONFLICT: Final = "TransactionConflictException"


@dataclass(frozen=True)
class Counter:
    """Take `asked` tokens from the counter `gate` of one item, if it is below `ceiling`
    now, and reserve `reserved[g]` tokens for each later counter `g` (never refused,
    granted as the module says). `exact`: only if all of `asked` fits below the ceiling
    (in a transaction, which answers no counts, so what was granted must be known from
    the condition alone; such a claim reserves nothing)."""

    key: str
    gate: str
    ceiling: int
    asked: int
    expires_at: int
    exact: bool = False
    reserved: Mapping[str, int] = field(default_factory=dict)
    reserve_ceiling: int = 0


def reservation(gate: str) -> str:
    """The attribute that counts tokens reserved ahead for `gate` (s4 -> r4)."""
    return f"r{gate[1:]}"


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


def _below(name: str, value: str, room: int) -> str:
    """`name` (a counter, 0 when absent) is at most `room`."""
    if room < 0:  # never: counts are not negative, and an absent one is no room
        return f"{name} <= {value}"
    return f"(attribute_not_exists({name}) OR {name} <= {value})"


def _condition(claim: Counter, names: dict[str, str], values: dict[str, Any]) -> str:
    """The gate has room: its count plus the reservations (at most reserve_ceiling) is
    below the ceiling, for one token, or for all of `asked` if exact. DynamoDB cannot add
    two attributes in a condition, so for an exact claim the reservations are bounded in
    steps of a quarter of reserve_ceiling (refusing, at worst, that much too early)."""
    if not claim.exact:
        values[":room"] = {"N": str(claim.ceiling - 1)}
        return _below("#gate", ":room", claim.ceiling - 1)
    cap = claim.reserve_ceiling
    steps = sorted({cap * n // 4 for n in range(4)} - {cap})
    clauses = []
    for n, reserved in enumerate([*steps, cap]):
        room = claim.ceiling - claim.asked - reserved
        values[f":room{n}"] = {"N": str(room)}
        clause = _below("#gate", f":room{n}", room)
        if reserved < cap:  # at most `reserved` tokens were asked ahead
            names["#res"] = reservation(claim.gate)
            values[f":res{n}"] = {"N": str(reserved)}
            clause = f"({_below('#res', f':res{n}', reserved)} AND {clause})"
        clauses.append(clause)
    return " OR ".join(clauses)


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
    values: dict[str, Any] = {
        ":exp": {"N": str(claim.expires_at)},
        ":asked": {"N": str(claim.asked)},
    }
    adds = ["#gate :asked"]
    for n, (gate, amount) in enumerate(sorted(claim.reserved.items())):
        names[f"#r{n}"] = reservation(gate)
        values[f":r{n}"] = {"N": str(amount)}
        adds.append(f"#r{n} :r{n}")
    condition = _condition(claim, names, values)
    return {
        "TableName": table,
        "Key": {"key": {"S": claim.key}},
        "UpdateExpression": f"SET #exp = :exp ADD {', '.join(adds)}",
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _granted(claim: Counter, item: Mapping[str, Any]) -> Outcome:
    """What `claim` was granted, from the item as its write left it (see the module)."""

    def count(attribute: str) -> int:
        return int(item[attribute]["N"]) if attribute in item else 0

    ceiling, cap = claim.ceiling, claim.reserve_ceiling
    outcome = Outcome()
    ahead = min(count(reservation(claim.gate)), cap)
    before = count(claim.gate) - claim.asked
    outcome.granted[(claim.key, claim.gate)] = max(0, min(claim.asked, ceiling - ahead - before))
    outcome.counts[(claim.key, claim.gate)] = min(ceiling, count(claim.gate) + ahead)
    for gate, asked in claim.reserved.items():
        reserved, on_demand = count(reservation(gate)), count(gate)
        before = reserved - asked
        granted = min(asked, cap - before, ceiling - on_demand - before)
        outcome.granted[(claim.key, gate)] = max(0, granted)
        outcome.counts[(claim.key, gate)] = min(ceiling, on_demand + min(reserved, cap))
    return outcome


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
            got = aws.dynamodb().update_item(**_update(claim, self.table), ReturnValues="ALL_NEW")
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == CONDITION_FAILED:
                return Outcome(refused=0)
            if code == TRANSACTION_CONFLICT and isinstance(claim, Stamp):
                return Outcome(refused=0)  # another call of the account, at this instant
            raise DomainError(f"rate limit claim failed: {exc}") from exc
        except BotoCoreError as exc:  # no answer (connection, timeout): not counted
            raise DomainError(f"rate limit claim failed: {exc}") from exc
        if isinstance(claim, Stamp):
            return Outcome()
        return _granted(claim, got.get("Attributes", {}))

    def _all(self, claims: Sequence[Claim]) -> Outcome:
        items = [{"Update": _update(claim, self.table)} for claim in claims]
        try:
            aws.dynamodb().transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == TRANSACTION_CANCELED:
                reasons = exc.response.get("CancellationReasons", [])
                codes = [reason.get("Code") for reason in reasons]
                if "ConditionalCheckFailed" in codes:
                    return Outcome(refused=codes.index("ConditionalCheckFailed"))
                # Another call of the account stamping at the same instant: that is E106,
                # not a reason to serve both uncounted.
                for n, code in enumerate(codes):
                    if code == "TransactionConflict" and isinstance(claims[n], Stamp):
                        return Outcome(refused=n)
            raise DomainError(f"rate limit claim failed: {exc}") from exc
        except BotoCoreError as exc:
            raise DomainError(f"rate limit claim failed: {exc}") from exc
        # Each gate had room for all it asked (exact claims): all of it was granted.
        granted = {(c.key, c.gate): c.asked for c in claims if isinstance(c, Counter)}
        return Outcome(granted=granted)
