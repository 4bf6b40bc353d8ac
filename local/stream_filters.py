"""Lambda's event filtering for the stream event sources (FilterCriteria), as AWS
applies it: a record goes to the function only when it matches one of the filters'
patterns; the others are dropped, never delivered (and not billed).

The subset of the documented filter rule syntax implemented here
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html):
a pattern is a JSON object whose keys name the record's fields (nested objects go
deeper); all of its keys must match; a key's value is a list of which one must
match: a literal (string, number, boolean, null: equal), {"prefix": "..."},
{"anything-but": literal or [literals]}, {"exists": true|false}. Anything else is
refused, so that a template using more is not silently mis-filtered here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_MISSING = object()


def patterns_of(criteria: Mapping[str, Any] | None) -> tuple[dict[str, Any], ...]:
    """The patterns of an event source mapping's FilterCriteria (none: no filtering)."""
    found = []
    for item in (criteria or {}).get("Filters") or []:
        pattern = json.loads(item["Pattern"])
        _check(pattern)
        found.append(pattern)
    return tuple(found)


def passes(record: Mapping[str, Any], patterns: Sequence[Mapping[str, Any]]) -> bool:
    """Whether Lambda hands this record to the function (no patterns: every record)."""
    return not patterns or any(_matches(record, pattern) for pattern in patterns)


def _matches(value: Any, pattern: Mapping[str, Any]) -> bool:
    for key, rule in pattern.items():
        field = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
        if isinstance(rule, Mapping):
            if field is _MISSING or not _matches(field, rule):
                return False
        elif not any(_one(field, option) for option in rule):
            return False
    return True


def _one(field: Any, option: Any) -> bool:
    if not isinstance(option, Mapping):
        return field is not _MISSING and field == option
    (operator, operand), *_ = option.items()
    if operator == "exists":
        return (field is not _MISSING) == bool(operand)
    if field is _MISSING:
        return False
    if operator == "prefix":
        return isinstance(field, str) and field.startswith(operand)
    excluded = operand if isinstance(operand, list) else [operand]
    return field not in excluded  # anything-but (checked by _check)


_OPERATORS = frozenset({"prefix", "anything-but", "exists"})


def _check(pattern: Any) -> None:
    if not isinstance(pattern, Mapping):
        raise ValueError(f"a filter pattern is a JSON object: {pattern!r}")
    for rule in pattern.values():
        if isinstance(rule, Mapping):
            _check(rule)
            continue
        if not isinstance(rule, list):
            raise ValueError(f"a filter rule is a list or an object: {rule!r}")
        for option in rule:
            if isinstance(option, Mapping) and (
                len(option) != 1 or next(iter(option)) not in _OPERATORS
            ):
                raise ValueError(f"filter operator not supported locally: {option!r}")
