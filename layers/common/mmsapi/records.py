"""Records (the dataclasses of mmsapi/models.py) to and from stored JSON.

`@record` makes a class a record: a slotted, keyword-only dataclass. `load(cls, data)`
turns a stored dict (parsed JSON, or a DynamoDB item already deserialised: numbers as
Decimal) into a record; `dump(record)` turns it back into a dict of JSON values.
`to_json` writes the exact text pydantic's model_dump_json wrote (compact, UTF-8, UTC
datetimes ending in "Z", enums as their values), so items written before the records
were dataclasses read back the same, and the other way round.

Loading is tolerant of old items (a missing key takes its field's default, an unknown
key is ignored) and strict about values: a value of the wrong type raises RecordError.
Each class's field plan is worked out once (typing.get_type_hints is slow) and cached.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import types
import typing
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, Final, TypeVar, dataclass_transform

R = TypeVar("R")
Convert = Callable[[Any], Any]


def _eq(self: Any, other: Any) -> bool:
    if type(other) is not type(self):
        return NotImplemented  # type: ignore[no-any-return]
    return all(getattr(self, f) == getattr(other, f) for f in self.__dataclass_fields__)


def _repr(self: Any) -> str:
    args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__dataclass_fields__)
    return f"{type(self).__qualname__}({args})"


@dataclass_transform(kw_only_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[R]) -> type[R]:
    """A slotted, keyword-only dataclass whose == and repr are the shared functions above:
    dataclass would compile both anew for each class, at every cold start."""
    setattr(cls, "__eq__", _eq)  # noqa: B010 (mypy: no assigning to a method)
    setattr(cls, "__repr__", _repr)  # noqa: B010
    setattr(cls, "__hash__", None)  # noqa: B010 (as a dataclass with eq: unhashable)
    return dataclasses.dataclass(slots=True, kw_only=True, repr=False, eq=False)(cls)


class RecordError(ValueError):
    """A stored value that does not fit its record: corrupt or foreign data."""


class _Field:
    """How one field of a record is read and written (not a dataclass: cheaper to define)."""

    __slots__ = ("dump", "load", "name", "required")

    def __init__(self, name: str, load: Convert, dump: Convert, *, required: bool) -> None:
        self.name, self.load, self.dump, self.required = name, load, dump, required


_PLANS: Final[dict[type, tuple[_Field, ...]]] = {}


def load(cls: type[R], data: Any) -> R:
    """The record of class `cls` that `data` (a dict) stores."""
    if not isinstance(data, dict):
        raise RecordError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    values: dict[str, Any] = {}
    for f in _plan(cls):
        if f.name in data:
            try:
                values[f.name] = f.load(data[f.name])
            except RecordError as error:
                raise RecordError(f"{cls.__name__}.{f.name}: {error}") from None
        elif f.required:
            raise RecordError(f"{cls.__name__}.{f.name}: missing")
    return cls(**values)


def dump(record: object) -> dict[str, Any]:
    """The dict of JSON values that stores `record` (every field, in declaration order)."""
    return {f.name: f.dump(getattr(record, f.name)) for f in _plan(type(record))}


def to_json(record: object) -> str:
    return json.dumps(dump(record), ensure_ascii=False, separators=(",", ":"))


def from_json(cls: type[R], text: str | bytes) -> R:
    try:
        data = json.loads(text)
    except ValueError as error:  # also UnicodeDecodeError
        raise RecordError(f"{cls.__name__}: not JSON ({error})") from None
    return load(cls, data)


def _plan(cls: type) -> tuple[_Field, ...]:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = tuple(
            _Field(
                f.name,
                *_converters(hints[f.name]),
                required=f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
        )
        _PLANS[cls] = plan
    return plan


def _converters(hint: Any) -> tuple[Convert, Convert]:
    """(load, dump) for values of the type `hint`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if len(args) != 2 or type(None) not in args:
            raise TypeError(f"records: unsupported union {hint}")
        inner_load, inner_dump = _converters(next(a for a in args if a is not type(None)))
        return (
            lambda v: None if v is None else inner_load(v),
            lambda v: None if v is None else inner_dump(v),
        )
    if origin is list:
        item_load, item_dump = _converters(args[0])
        return (
            lambda v: [item_load(i) for i in _sequence(v)],
            lambda v: [item_dump(i) for i in v],
        )
    if origin is tuple:
        return _tuple_converters(args)
    if origin is dict:
        key_load, key_dump = _converters(args[0])
        value_load, value_dump = _converters(args[1])
        return (
            lambda v: {key_load(k): value_load(i) for k, i in _mapping(v).items()},
            lambda v: {key_dump(k): value_dump(i) for k, i in v.items()},
        )
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            # A record given as such (not as its stored dict) is taken as it is.
            return (lambda v: v if isinstance(v, hint) else load(hint, v)), dump
        if issubclass(hint, Enum):
            return _enum_load(hint), _enum_dump
        scalar = _SCALARS.get(hint)
        if scalar is not None:
            return scalar
    raise TypeError(f"records: unsupported type {hint}")


def _tuple_converters(args: tuple[Any, ...]) -> tuple[Convert, Convert]:
    if len(args) == 2 and args[1] is Ellipsis:
        item_load, item_dump = _converters(args[0])
        return (
            lambda v: tuple(item_load(i) for i in _sequence(v)),
            lambda v: [item_dump(i) for i in v],
        )
    pairs = [_converters(a) for a in args]

    def load_fixed(v: Any) -> tuple[Any, ...]:
        items = _sequence(v)
        if len(items) != len(pairs):
            raise RecordError(f"expected {len(pairs)} items, got {len(items)}")
        return tuple(p[0](i) for p, i in zip(pairs, items, strict=True))

    return load_fixed, lambda v: [p[1](i) for p, i in zip(pairs, v, strict=True)]


def _sequence(v: Any) -> list[Any] | tuple[Any, ...]:
    if not isinstance(v, list | tuple):
        raise RecordError(f"expected a list, got {type(v).__name__}")
    return v


def _mapping(v: Any) -> dict[Any, Any]:
    if not isinstance(v, dict):
        raise RecordError(f"expected an object, got {type(v).__name__}")
    return v


def _enum_load(cls: type[Enum]) -> Convert:
    def convert(v: Any) -> Enum:
        try:
            return cls(v)
        except ValueError:
            raise RecordError(f"{v!r} is not a {cls.__name__}") from None

    return convert


def _enum_dump(v: Enum) -> Any:
    return v.value


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise RecordError(f"expected a string, got {type(v).__name__}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise RecordError(f"expected a boolean, got {type(v).__name__}")
    return v


def _int(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if _is_number(v):  # 3.0 and Decimal(3) are as good as 3
        try:
            whole = int(v)
        except (ValueError, OverflowError):  # NaN, infinity
            pass
        else:
            if whole == v:
                return whole
    raise RecordError(f"expected a whole number, got {v!r}")


def _float(v: Any) -> float:
    if _is_number(v):
        return float(v)
    raise RecordError(f"expected a number, got {v!r}")


def _is_number(v: Any) -> bool:
    # JSON gives int and float, DynamoDB's deserialiser Decimal: a numbers.Number (the
    # decimal module is not imported for it).
    return isinstance(v, numbers.Number) and not isinstance(v, bool | complex)


def _datetime_load(v: Any) -> datetime:
    try:
        return datetime.fromisoformat(_str(v))
    except ValueError:
        raise RecordError(f"{v!r} is not an ISO 8601 time") from None


def _datetime_dump(v: datetime) -> str:
    # pydantic wrote UTC as "Z"; isoformat writes "+00:00".
    text = v.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _same(v: Any) -> Any:
    return v


_SCALARS: Final[dict[type, tuple[Convert, Convert]]] = {
    str: (_str, _same),
    bool: (_bool, _same),
    int: (_int, _same),
    float: (_float, float),
    datetime: (_datetime_load, _datetime_dump),
}
