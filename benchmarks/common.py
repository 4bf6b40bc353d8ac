"""What the benchmarks share: a quiet emulated environment, percentiles, timed API calls."""

from __future__ import annotations

import os
import time
from collections import Counter

from benchmarks.aws_calls import counting
from mmsapi.observability import logger
from mmsapi.services.api import handle
from mmsapi.services.context import Context


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


def timed_requests(ctx: Context, body: bytes, requests: int) -> tuple[list[float], Counter[str]]:
    """Each request's time through the API handler in ms, and the AWS calls of them all.

    Every answer must be a Success.
    """
    times: list[float] = []
    with counting() as calls:
        for _ in range(requests):
            start = time.perf_counter()
            answer = handle(ctx, body, {}, "127.0.0.1")
            times.append((time.perf_counter() - start) * 1000)
            assert b"Success" in answer, answer
    return times, calls
