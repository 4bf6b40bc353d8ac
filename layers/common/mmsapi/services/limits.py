"""Rate limits per account, shared by every warm API function: E113, E106, E120.

Every authenticated request is checked here before its action does any work
(services/api.py). The counts live in the limits table (store/limits.py), so running
many functions does not multiply a limit. To keep that cheap, a function leases tokens
in batches and spends them locally:

- throughput (E113, per action per second): a lease takes tokens for the current
  second; a function that spent all its last lease also reserves as many for each later
  second of the same 10-second block, while the account is far from its limit and
  within half of each second's limit (the other half stays for leases on demand). The
  batch doubles when it runs out within a second and halves when tokens are left over,
  up to a quarter of the limit; near the limit (the second's count past half of it)
  leases shrink to a quarter of what is left, then to 1;
- daily quota (E120, all actions, per UTC day): a lease doubles from 1 while the last
  one lasted under half of DAY_LEASE_SECONDS and halves when it lasted longer than
  DAY_LEASE_SECONDS (tokens left over), never more than DAY_LEASE_SECONDS' worth of
  requests at the pace the last one was spent (or DAY_LEASE_FLOOR), nor a thousandth of
  the quota, nor a sixteenth of what is left near the end. So a function that goes cold
  takes with it at most a few seconds of its own recent traffic;
- minimum interval (E106, off unless set): every call stamps the account's last-call
  time with a conditional write, so it costs one call per request when set.

If the table cannot be reached, the request is served uncounted (logged): limits fail
open, with the HTTP API's stage throttle still in front.

What is due for one request is claimed in one AWS call (one UpdateItem, or one
TransactWriteItems when several are due). No more tokens than a limit are ever granted
in a window, by any number of functions; a request can be refused while fewer were
spent, by at most what other functions leased and have not spent yet (and, in a
transaction, a quarter of the reservations' half, store/limits.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from mmsapi.errors import ApiError, DomainError
from mmsapi.models import Account
from mmsapi.observability import logger
from mmsapi.scope import bound
from mmsapi.store.limits import (
    BLOCK_SECONDS,
    Claim,
    Counter,
    LimitStore,
    Stamp,
    day_key,
    last_key,
    rate_key,
)

# How long a window's item stays after its window (TTL removes it later still).
RATE_ITEM_SECONDS: Final = 3600
DAY_ITEM_SECONDS: Final = 2 * 86_400
LAST_ITEM_SECONDS: Final = 86_400
# A daily-quota lease is at most this many seconds' worth of the function's requests,
# or DAY_LEASE_FLOOR tokens (so that a slow function does not call for every few).
DAY_LEASE_SECONDS: Final = 10.0
DAY_LEASE_FLOOR: Final = 16


@dataclass
class _Throughput:
    """One (account, action)'s leased tokens in this function."""

    ceiling: int
    tokens: dict[int, int] = field(default_factory=dict)  # second -> unspent tokens
    size: int = 1
    seen: dict[int, int] = field(default_factory=dict)  # second -> its counter, as last seen
    full_second: int = -1  # a second known to be used up
    busy: bool = False  # it has leased before (and may reserve ahead)


@dataclass
class _Daily:
    day: str
    quota: int
    tokens: int = 0
    size: int = 0
    seen: int = 0
    exhausted: bool = False
    leased_at: float | None = None  # when its last lease was granted


def _seconds(value: float) -> str:
    return f"{value:g}"


def e106(interval: float) -> ApiError:
    return ApiError("E106", x=_seconds(interval))


def e113(action: str, ceiling: int) -> ApiError:
    return ApiError("E113", detail=f"{action}: {ceiling} per second")


def e120(quota: int) -> ApiError:
    return ApiError("E120", detail=f"{quota} requests per day, counted again from 00:00 UTC")


class RateLimiter:
    """The lease state of one warm function (one per process; tests make several)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rates: dict[tuple[str, str], _Throughput] = {}
        self._days: dict[str, _Daily] = {}
        self._last_ms: dict[str, int] = {}  # this function's last accepted call
        self.calls = 0  # AWS calls made (benchmarks/limits_cost.py, tests)

    def check(self, account: Account, action: str) -> None:
        """Count one request of `account` for `action`, or refuse it with E106/E113/E120."""
        with self._lock:
            self._check(account, action)

    def _check(self, account: Account, action: str) -> None:
        now = self._clock()
        second, now_ms = int(now), int(now * 1000)
        limits = account.rate_limits
        aid = account.account_id
        interval_ms = round(limits.min_interval_seconds * 1000)
        last = self._last_ms.get(aid)
        if interval_ms > 0 and last is not None and now_ms - last < interval_ms:
            raise e106(limits.min_interval_seconds)  # known here: no call needed
        rate = self._rate(aid, action, limits.throughput_of(action), second)
        today = datetime.fromtimestamp(now, UTC)
        daily = self._daily(aid, limits.daily_quota, today.date().isoformat())
        # A limit below 1 (stored by hand: the admin tool refuses it) allows nothing.
        if rate.full_second == second or rate.ceiling < 1:
            raise e113(action, rate.ceiling)
        if daily.exhausted or daily.quota < 1:
            raise e120(daily.quota)

        claims: list[Claim] = []
        codes: list[str] = []
        if interval_ms > 0:
            expires = second + interval_ms // 1000 + LAST_ITEM_SECONDS
            claims.append(Stamp(last_key(aid), now_ms, now_ms - interval_ms, expires))
            codes.append("E106")
        rate_due = rate.tokens.get(second, 0) <= 0
        day_due = daily.tokens <= 0
        # A claim made alone learns its counters, so it takes what fits of its batch and
        # reserves later seconds; claims made together (a transaction) learn nothing, so
        # each one takes its whole batch or is refused.
        alone = len(claims) + rate_due + day_due == 1
        if rate_due:
            claims.append(self._rate_claim(aid, action, rate, second, alone))
            codes.append("E113")
        if day_due:
            claims.append(self._day_claim(aid, daily, today, now, alone))
            codes.append("E120")
        if claims:
            self.calls += 1
            try:
                outcome = LimitStore().claim(claims)
            except DomainError:
                # The counters cannot be reached (after botocore's retries): serve the
                # request uncounted rather than fail it; the stage throttle still holds.
                logger.warning("rate limits not checked", extra={"account": aid}, exc_info=True)
                return
            if outcome.refused is not None:
                code, refused = codes[outcome.refused], claims[outcome.refused]
                # Refused for one token: the window is used up. Refused for a batch (a
                # transaction's all-or-nothing claim): maybe only the batch did not fit.
                used_up = not isinstance(refused, Counter) or refused.asked == 1
                if code == "E113":
                    rate.full_second = second if used_up else rate.full_second
                    raise e113(action, rate.ceiling)
                if code == "E120":
                    daily.exhausted, daily.size = used_up, 0  # next: one token
                    raise e120(daily.quota)
                raise e106(limits.min_interval_seconds)
            for (key, attribute), granted in outcome.granted.items():
                count = outcome.counts.get((key, attribute))
                if key.startswith("day#"):
                    daily.tokens += granted
                    daily.seen = daily.seen if count is None else count
                else:
                    at = second - second % BLOCK_SECONDS + int(attribute[1:])
                    rate.tokens[at] = rate.tokens.get(at, 0) + granted
                    if count is not None:
                        rate.seen[at] = count
            # Granted nothing: what is left of the window is reserved by other functions.
            if rate.tokens.get(second, 0) <= 0:
                rate.full_second = second
                raise e113(action, rate.ceiling)
            if daily.tokens <= 0:
                daily.exhausted = True
                raise e120(daily.quota)
        rate.tokens[second] -= 1
        daily.tokens -= 1
        self._last_ms[aid] = now_ms

    def _rate(self, aid: str, action: str, ceiling: int, second: int) -> _Throughput:
        state = self._rates.get((aid, action))
        if state is None or state.ceiling != ceiling:  # a changed limit starts afresh
            state = self._rates[(aid, action)] = _Throughput(ceiling)
        return state

    def _daily(self, aid: str, quota: int, day: str) -> _Daily:
        state = self._days.get(aid)
        if state is None or state.day != day or state.quota != quota:
            state = self._days[aid] = _Daily(day, quota)
        return state

    def _rate_claim(
        self, aid: str, action: str, rate: _Throughput, second: int, alone: bool
    ) -> Counter:
        key, gate = rate_key(aid, action, second)
        expires = second + BLOCK_SECONDS + RATE_ITEM_SECONDS
        left_over = sum(n for s, n in rate.tokens.items() if s < second)
        ran_out = second in rate.tokens  # spent this second's lease within the second
        rate.tokens = {s: n for s, n in rate.tokens.items() if s >= second}
        rate.seen = {s: n for s, n in rate.seen.items() if s >= second}
        # More wanted within one second: lease more; tokens left unspent: lease less.
        if left_over:
            rate.size = max(1, rate.size // 2)
        elif ran_out:
            rate.size *= 2
        rate.size = min(rate.size, max(1, rate.ceiling // 4))
        seen = rate.seen.get(second, 0)
        near = seen * 2 > rate.ceiling
        if near:
            rate.size = max(1, min(rate.size, (rate.ceiling - seen) // 4))
        # A function that spent all it leased (busy every second) reserves as much for
        # the rest of the block, within half of each second's limit: the other half
        # stays for leases on demand, whatever idle functions reserved. Reservations are
        # counted apart from the on-demand counts, so what was asked ahead and not
        # granted does not take room from anyone.
        reserved: dict[str, int] = {}
        if alone and not near and rate.busy and not left_over:
            for digit in range(second % BLOCK_SECONDS + 1, BLOCK_SECONDS):
                reserved[f"s{digit}"] = rate.size
        rate.busy = True
        # Alone, it takes what fits of its batch; in a transaction, one token (all or
        # nothing, so a refusal means the second is used up).
        return Counter(
            key,
            gate,
            rate.ceiling,
            rate.size if alone else 1,
            expires,
            exact=not alone,
            reserved=reserved,
            reserve_ceiling=rate.ceiling // 2,
        )

    def _day_claim(
        self, aid: str, daily: _Daily, today: datetime, now: float, alone: bool
    ) -> Counter:
        midnight = datetime.combine(today.date() + timedelta(days=1), datetime.min.time(), UTC)
        expires = int(midnight.timestamp()) + DAY_ITEM_SECONDS
        cap = max(1, daily.quota // 1000)
        if daily.seen * 2 > daily.quota:
            cap = min(cap, max(1, (daily.quota - daily.seen) // 16))
        size = 1
        if daily.leased_at is not None and daily.size > 0:
            lasted = max(now - daily.leased_at, 0.001)
            # Spent quickly: lease more; left over for long: lease less. Never more than
            # DAY_LEASE_SECONDS at the pace the last lease was spent.
            size = daily.size
            if lasted * 2 <= DAY_LEASE_SECONDS or size * 2 <= DAY_LEASE_FLOOR:
                size *= 2
            elif lasted > DAY_LEASE_SECONDS and size > DAY_LEASE_FLOOR:
                size //= 2
            size = min(size, max(DAY_LEASE_FLOOR, int(daily.size * DAY_LEASE_SECONDS / lasted)))
        daily.size = max(1, min(size, cap))
        daily.leased_at = now
        return Counter(
            day_key(aid, daily.day), "n", daily.quota, daily.size, expires, exact=not alone
        )


_process = RateLimiter()
_own: ContextVar[RateLimiter | None] = ContextVar("mmsapi_rate_limiter", default=None)


def limiter() -> RateLimiter:
    """This function's limiter: the process's, or one set with `own_limiter`."""
    return _own.get() or _process


@contextmanager
def own_limiter(instance: RateLimiter) -> Iterator[RateLimiter]:
    """Use `instance` in this context: tests run several "warm functions" in one process."""
    with bound(_own, instance):
        yield instance


def check_limits(account: Account, action: str) -> None:
    limiter().check(account, action)
