"""What the benchmarks share: a quiet emulated environment, percentiles, timed API calls."""

from __future__ import annotations

import os
import time
from collections import Counter

from benchmarks.aws_calls import counting
from local.functions import function_environment
from local.stack import provision
from mmsapi.models import ALL_ACTIONS, RATE_LIMIT_BOUNDS, Account, RateLimits, Shortcode
from mmsapi.observability import logger
from mmsapi.services.accounts import create_account
from mmsapi.services.api import handle
from mmsapi.services.context import Context, context
from mmsapi.settings import get_settings

BENCH_KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"


def quiet_environment() -> None:
    """Fake credentials, quiet logs, loopback media: the same for every benchmark."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "MMS_ALLOW_LOOPBACK_MEDIA": "true",
    }.items():
        os.environ[name] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    logger.setLevel("WARNING")  # created at import, before the variables above


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed_requests(
    ctx: Context, body: bytes, requests: int, per_second: float | None = None
) -> tuple[list[float], Counter[str]]:
    """Each request's time through the API handler in ms, and the AWS calls of them all:
    as fast as they go, or at a steady `per_second`. Every answer must be a Success.
    """
    times: list[float] = []
    first = time.perf_counter()
    with counting() as calls:
        for n in range(requests):
            start = time.perf_counter()
            answer = handle(ctx, body, {}, "127.0.0.1")
            times.append((time.perf_counter() - start) * 1000)
            assert b"Success" in answer, answer
            if per_second:
                time.sleep(max(0.0, first + (n + 1) / per_second - time.perf_counter()))
    return times, calls


def sending_stack(subject: str, text: str) -> tuple[Context, Account, str]:
    """Inside mock_aws: the stack, the API's context, an account that sends from 28444
    (service-id 12345, key BENCH_KEY), and the mms-id of a saved text template."""
    stack = provision("mmsapi-bench")
    os.environ.update(function_environment(stack))
    os.environ["MMS_CARRIER_PROVISIONED"] = "true"  # sends are accepted (no MMSC here)
    get_settings.cache_clear()
    ctx = context()
    account, _ = create_account(
        ctx.accounts,
        "bench",
        api_key=BENCH_KEY,
        service_id="12345",
        shortcodes=[Shortcode(code="28444", country="US")],
    )
    # A benchmark sends as fast as it can: the account's throughput is the highest allowed.
    top = int(RATE_LIMIT_BOUNDS["throughput"][1])
    set_limits(ctx, account.account_id, RateLimits(throughput=dict.fromkeys(ALL_ACTIONS, top)))
    saved = handle(
        ctx,
        (
            f"<request><action>saveMMS</action><api-key>{BENCH_KEY}</api-key><name>b</name>"
            f"<message-subject>{subject}</message-subject>"
            f"<slide><message-text>{text}</message-text></slide></request>"
        ).encode(),
        {},
        "127.0.0.1",
    )
    return ctx, account, saved.split(b"<mms-id>")[1].split(b"<")[0].decode()


def set_limits(ctx: Context, account_id: str, limits: RateLimits) -> None:
    def edit(account: Account) -> Account:
        account.rate_limits = limits
        return account

    ctx.accounts.change(account_id, edit)
