"""One value for the length of a block, per context (thread or task): the idiom behind
scoped_settings, a request's Budget and a test's own rate limiter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def bound(var: ContextVar[T | None], value: T) -> Iterator[T]:
    """`var` holds `value` in this context until the block ends."""
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)
