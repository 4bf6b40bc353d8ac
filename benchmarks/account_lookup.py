"""Authentication without a cache: what reading the account on every request costs.

Each request reads the key's lookup item and the account item with consistent
GetItems. This times `authenticate` alone, in-process against the emulated AWS
(moto), and counts its AWS calls. On AWS a consistent GetItem of a small item takes
a few ms in the same region, so the calls per request times that is the figure there.

Run: .venv/bin/python -m benchmarks.account_lookup [requests]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from moto import mock_aws

from benchmarks.aws_calls import counting
from benchmarks.common import percentile, quiet_environment
from local.functions import function_environment
from local.stack import provision
from mmsapi.services.accounts import create_account
from mmsapi.services.auth import authenticate
from mmsapi.services.context import context
from mmsapi.settings import get_settings

KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"


def run(requests: int) -> None:
    quiet_environment()
    with mock_aws():
        os.environ.update(function_environment(provision("mmsapi-bench")))
        get_settings.cache_clear()
        ctx = context()
        create_account(ctx.accounts, "bench", api_key=KEY, ip_allowlist=["127.0.0.0/8"])
        authenticate(ctx.accounts, KEY, "127.0.0.1", "saveMMS")  # warm: connections
        times: list[float] = []
        with counting() as calls:
            for _ in range(requests):
                start = time.perf_counter()
                authenticate(ctx.accounts, KEY, "127.0.0.1", "saveMMS")
                times.append((time.perf_counter() - start) * 1000)
    per_request = {k: v / requests for k, v in sorted(calls.items())}
    print(f"authenticate, no cache, in-process, emulated AWS (moto), {requests} requests")
    print(f"{'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}  AWS calls per request")
    summary = ", ".join(f"{k} {v:.2f}" for k, v in per_request.items())
    print(
        f"{percentile(times, 0.5):8.2f} {percentile(times, 0.99):8.2f} "
        f"{statistics.fmean(times):8.2f}  {summary}"
    )


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
