"""An IAM evaluator for identity policies: the subset a Lambda execution role needs.

    role = Role.from_documents("ApiFunctionRole", inline=[doc], managed_arns=[arn])
    role.decide("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t")

Rules as AWS applies them to one principal's identity policies:
- an explicit Deny in any statement wins; otherwise an Allow is needed; otherwise
  the request is implicitly denied;
- Action/NotAction match case-insensitively, with `*` and `?` wildcards;
- Resource/NotResource match case-sensitively (ARNs are), with the same wildcards;
- Condition: the operators below are evaluated against the request context the
  caller passes. A condition that cannot be evaluated (unknown operator, or a key
  the context lacks) is treated conservatively: the statement does not match if
  it allows, and does match if it denies. So an unknown condition never grants.

Policy variables (`${aws:username}`) are not expanded: a Resource using them
matches only literally, which again can only refuse, never grant.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

MANAGED_POLICIES_PATH = Path(__file__).resolve().parent / "aws_managed_policies.json"


class PolicyError(Exception):
    """A policy the evaluator cannot read, or a managed policy it has no document for."""


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


@cache
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard match: `*` any run of characters, `?` any one character."""
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# ---------------------------------------------------------------- conditions

Context = Mapping[str, str | Sequence[str]]


def _string_op(negate: bool, like: bool, ignore_case: bool = False) -> Any:
    def check(actual: str, expected: str) -> bool:
        if like:
            found = matches(expected, actual, ignore_case=ignore_case)
        elif ignore_case:
            found = actual.lower() == expected.lower()
        else:
            found = actual == expected
        return found != negate

    return check


_OPERATORS: dict[str, Any] = {
    "StringEquals": _string_op(False, False),
    "StringNotEquals": _string_op(True, False),
    "StringEqualsIgnoreCase": _string_op(False, False, True),
    "StringNotEqualsIgnoreCase": _string_op(True, False, True),
    "StringLike": _string_op(False, True),
    "StringNotLike": _string_op(True, True),
    "ArnEquals": _string_op(False, True),  # ARN operators take wildcards too
    "ArnLike": _string_op(False, True),
    "ArnNotEquals": _string_op(True, True),
    "ArnNotLike": _string_op(True, True),
    "Bool": lambda actual, expected: actual.lower() == str(expected).lower(),
}


def _condition_holds(operator: str, key: str, expected: Any, context: Context) -> bool | None:
    """True/False, or None when it cannot be evaluated here."""
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    qualifier = ""
    if ":" in base and base.split(":", 1)[0] in ("ForAnyValue", "ForAllValues"):
        qualifier, base = base.split(":", 1)
    check = _OPERATORS.get(base)
    if check is None:
        return None
    if key not in context:
        # A missing key: "...IfExists" holds, a negated operator holds, others do not.
        return True if if_exists or qualifier == "ForAllValues" else None
    raw = context[key]
    actuals = [raw] if isinstance(raw, str) else list(raw)
    wanted = [str(item) for item in _as_list(expected)]
    negated = "Not" in base

    def one(actual: str) -> bool:
        results = (check(actual, item) for item in wanted)
        return all(results) if negated else any(results)

    if qualifier == "ForAllValues":
        return all(one(actual) for actual in actuals)
    return any(one(actual) for actual in actuals)


def _conditions_hold(conditions: Mapping[str, Any], context: Context) -> bool | None:
    unknown = False
    for operator, block in conditions.items():
        if not isinstance(block, Mapping):
            raise PolicyError(f"condition {operator} must map keys to values")
        for key, expected in block.items():
            held = _condition_holds(operator, key, expected, context)
            if held is False:
                return False
            if held is None:
                unknown = True
    return None if unknown else True


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: Mapping[str, Any] = field(default_factory=dict)
    sid: str = ""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"statement Effect must be Allow or Deny, not {effect!r}")
        if ("Action" in raw) == ("NotAction" in raw):
            raise PolicyError("a statement needs exactly one of Action and NotAction")
        if ("Resource" in raw) == ("NotResource" in raw):
            raise PolicyError("a statement needs exactly one of Resource and NotResource")
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if any(not isinstance(item, str) for item in _as_list(raw.get(key))):
                raise PolicyError(f"{key} holds something unresolved: {raw.get(key)!r}")
        return cls(
            effect=effect,
            actions=tuple(_as_list(raw.get("Action"))),
            not_actions=tuple(_as_list(raw.get("NotAction"))),
            resources=tuple(_as_list(raw.get("Resource"))),
            not_resources=tuple(_as_list(raw.get("NotResource"))),
            conditions=dict(raw.get("Condition", {})),
            sid=str(raw.get("Sid", "")),
        )

    def applies(self, action: str, resource: str, context: Context) -> bool:
        if self.actions:
            if not any(matches(p, action, ignore_case=True) for p in self.actions):
                return False
        elif any(matches(p, action, ignore_case=True) for p in self.not_actions):
            return False
        if self.resources:
            if not any(matches(p, resource) for p in self.resources):
                return False
        elif any(matches(p, resource) for p in self.not_resources):
            return False
        if not self.conditions:
            return True
        held = _conditions_hold(self.conditions, context)
        if held is None:  # cannot tell: never grant, always refuse
            return self.effect == "Deny"
        return held


def parse_document(document: Mapping[str, Any] | str) -> list[Statement]:
    loaded = json.loads(document) if isinstance(document, str) else document
    return [Statement.parse(raw) for raw in _as_list(loaded.get("Statement"))]


def evaluate(
    statements: Iterable[Statement], action: str, resource: str, context: Context | None = None
) -> Decision:
    allowed = False
    for statement in statements:
        if statement.applies(action, resource, context or {}):
            if statement.effect == "Deny":
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


# ---------------------------------------------------------------- managed policies and roles


@cache
def managed_policies() -> dict[str, dict[str, Any]]:
    """ARN -> document of the AWS managed policies this project's roles may attach."""
    loaded: dict[str, Any] = json.loads(MANAGED_POLICIES_PATH.read_text(encoding="utf-8"))
    return {arn: doc for arn, doc in loaded.items() if arn.startswith("arn:")}


def managed_policy(arn: str) -> dict[str, Any]:
    found = managed_policies().get(arn)
    if found is None:
        raise PolicyError(
            f"no document for managed policy {arn}: add its default version to "
            f"{MANAGED_POLICIES_PATH.name} (an unknown policy is never an allow-all)"
        )
    return found


@dataclass(frozen=True)
class Role:
    """One role: its inline and managed policies, flattened into statements."""

    name: str
    statements: tuple[Statement, ...]

    @classmethod
    def from_documents(
        cls,
        name: str,
        inline: Iterable[Mapping[str, Any] | str] = (),
        managed_arns: Iterable[str] = (),
    ) -> Role:
        statements: list[Statement] = []
        for document in inline:
            statements.extend(parse_document(document))
        for arn in managed_arns:
            statements.extend(parse_document(managed_policy(arn)))
        return cls(name, tuple(statements))

    def decide(self, action: str, resource: str, context: Context | None = None) -> Decision:
        return evaluate(self.statements, action, resource, context)
