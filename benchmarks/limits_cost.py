"""What rate limits and idempotency add to a request: AWS calls and milliseconds.

sendSavedMMS through the API handler, in-process, against the emulated AWS (moto). The
added calls are those made to the limits and idempotency tables; the added time is the
time spent in the limit check and in the idempotency wrapper around the action's work
(moto answers in well under a millisecond less than DynamoDB does: on AWS add ~5 ms per
added call). Clocks are stepped, not waited for, so a scenario's pace is exact.

Run: .venv/bin/python -m benchmarks.limits_cost [requests]
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from typing import Any

from moto import mock_aws

from benchmarks.aws_calls import by_table, counting
from benchmarks.common import BENCH_KEY as KEY
from benchmarks.common import quiet_environment, sending_stack, set_limits
from benchmarks.goals import Figure, record
from mmsapi.models import RateLimits
from mmsapi.services import api, idempotency
from mmsapi.services.api import handle
from mmsapi.services.context import Context
from mmsapi.services.limits import RateLimiter, own_limiter
from mmsapi.settings import get_settings

T0 = 1_795_687_200.0  # a 10-second block's start
DAYS = itertools.count(1)


class Timed:
    """Wraps a function of the api module, adding up the time spent in it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seconds = 0.0
        self.original: Callable[..., Any] = getattr(api, name)

    def __enter__(self) -> Timed:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        setattr(api, self.name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(api, self.name, self.original)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def send_body(mms_id: str, reference: str = "") -> bytes:
    ref = f"<client-reference>{reference}</client-reference>" if reference else ""
    return (
        f"<request><action>sendSavedMMS</action><api-key>{KEY}</api-key>"
        f"<mms-id>{mms_id}</mms-id><to>14044790000</to><from>28444</from>"
        f"<service-id>12345</service-id><fallback-sms-text>see</fallback-sms-text>{ref}</request>"
    ).encode()


def limits_row(
    ctx: Context, name: str, body: bytes, requests: int, step: float, table: str
) -> tuple[str, float, float, float]:
    """(scenario, added calls per request, added ms per request, refused share).

    Each scenario runs on a day of its own, as a new warm function: no counts of another.
    """
    clock = Clock()
    start = T0 + next(DAYS) * 86_400
    refused = 0
    limiter = own_limiter(RateLimiter(clock=clock))
    with limiter, Timed("check_limits") as spent, counting(by_table) as calls:
        for n in range(requests):
            clock.now = start + n * step
            answer = handle(ctx, body, {}, "127.0.0.1")
            refused += b"Success" not in answer
    return name, calls[table] / requests, spent.seconds * 1000 / requests, refused / requests


def idempotency_row(
    ctx: Context, name: str, bodies: list[bytes], table: str
) -> tuple[str, float, float, float]:
    """(scenario, added calls per request, added ms per request, work done per request)."""
    original = idempotency.run_once
    work_seconds: list[float] = []

    def measured(account: Any, action: str, doc: Any, work: Callable[[], Any]) -> Any:
        def timed_work() -> Any:
            start = time.perf_counter()
            try:
                return work()
            finally:
                work_seconds.append(time.perf_counter() - start)

        return original(account, action, doc, timed_work)

    setattr(api, "run_once", measured)  # noqa: B010
    try:
        with Timed("run_once") as spent, counting(by_table) as calls:
            for body in bodies:
                assert b"Success" in handle(ctx, body, {}, "127.0.0.1")
    finally:
        setattr(api, "run_once", original)  # noqa: B010
    added = (spent.seconds - sum(work_seconds)) * 1000 / len(bodies)
    return name, calls[table] / len(bodies), added, len(work_seconds) / len(bodies)


def run(requests: int) -> None:
    quiet_environment()
    with mock_aws():
        ctx, account, mms_id = sending_stack("Hi", "Hello")
        set_limits(ctx, account.account_id, RateLimits())  # the defaults, as deployed
        body = send_body(mms_id)
        handle(ctx, body, {}, "127.0.0.1")  # warm: connections, id blocks
        limits_table = get_settings().limits_table
        idem_table = get_settings().idempotency_table
        aid = account.account_id

        rows = [
            limits_row(ctx, "defaults, 50 req/s", body, requests, 0.02, limits_table),
            limits_row(ctx, "defaults, 1 req/s", body, 60, 1.0, limits_table),
        ]
        set_limits(ctx, aid, RateLimits(throughput={"sendSavedMMS": 10}))
        rows.append(limits_row(ctx, "10/s limit, 9 req/s", body, 90, 1 / 9, limits_table))
        rows.append(limits_row(ctx, "10/s limit, 20 req/s", body, 100, 0.05, limits_table))
        set_limits(ctx, aid, RateLimits(daily_quota=requests * 20))
        rows.append(limits_row(ctx, "quota 20x run, 50 req/s", body, requests, 0.02, limits_table))
        set_limits(ctx, aid, RateLimits(min_interval_seconds=0.01))
        rows.append(limits_row(ctx, "min interval 10 ms, 50/s", body, 100, 0.02, limits_table))
        set_limits(ctx, aid, RateLimits())

        print(f"Rate limits: sendSavedMMS, in-process, emulated AWS (moto); {requests} requests")
        print(f"{'scenario':<28} {'calls/req':>10} {'ms/req':>8} {'refused':>8}")
        for name, calls, ms, refused in rows:
            print(f"{name:<28} {calls:10.3f} {ms:8.2f} {refused:8.0%}")
        record(
            Figure("rate limits: AWS calls per request, defaults, 50 req/s", rows[0][1], 0.1),
            Figure("rate limits: AWS calls per request, most of all", max(r[1] for r in rows), 1),
        )

        set_limits(ctx, aid, RateLimits(throughput={"sendSavedMMS": 10_000}))
        with own_limiter(RateLimiter()):  # real time, as fast as it goes: no limit met
            fresh = [send_body(mms_id, f"r-{n}") for n in range(requests // 3)]
            idem = [
                idempotency_row(ctx, "no client-reference", [body] * (requests // 3), idem_table),
                idempotency_row(ctx, "client-reference, new", fresh, idem_table),
                idempotency_row(ctx, "client-reference, repeat", fresh, idem_table),
            ]
        print()
        print("Idempotency: sendSavedMMS, same setting")
        print(f"{'scenario':<28} {'calls/req':>10} {'ms/req':>8} {'work/req':>8}")
        for name, calls, ms, worked in idem:
            print(f"{name:<28} {calls:10.3f} {ms:8.2f} {worked:8.2f}")


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
