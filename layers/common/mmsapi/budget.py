"""The time a synchronous request may spend working before it must answer.

API Gateway's HTTP API gives up on an integration after 30 s and the API function's
timeout is 29 s: past either, the client gets a 5xx instead of XML. A request's
budget is what Lambda says is left, minus a margin for removing what was stored and
rendering the answer. Work checks the budget and stops in time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from mmsapi.scope import bound
from mmsapi.settings import get_settings


@dataclass(frozen=True)
class Budget:
    deadline: float  # a time.monotonic() instant

    @classmethod
    def of(cls, seconds: float) -> Budget:
        return cls(time.monotonic() + max(0.0, seconds))

    @classmethod
    def from_remaining_ms(cls, remaining_ms: int) -> Budget:
        """The budget of a Lambda invocation with `remaining_ms` left (its context's
        get_remaining_time_in_millis()), less the margin for cleanup and the answer."""
        return cls.of(remaining_ms / 1000 - get_settings().request_safety_margin)

    @classmethod
    def default(cls) -> Budget:
        """Without a Lambda context (tests, tools): as much as the API function gets."""
        return cls.of(get_settings().request_budget_seconds)

    @classmethod
    def current(cls) -> Budget:
        """The budget of the request being answered (`within`), else the default."""
        return _current.get() or cls.default()

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def until(self, seconds: float) -> float:
        """The earlier of this deadline and `seconds` from now (a monotonic instant)."""
        return min(self.deadline, time.monotonic() + seconds)


_current: ContextVar[Budget | None] = ContextVar("mmsapi_request_budget", default=None)


@contextmanager
def within(budget: Budget) -> Iterator[Budget]:
    """Budget.current() answers `budget` until the block ends (one request's work)."""
    with bound(_current, budget):
        yield budget
