"""sendSavedMMS through the API handler in-process against the emulated AWS: what a
burst of sends costs before delivery (which runs behind the send queue).

A warm send is one TransactWriteItems (the send and its "queue send" outbox item); the
copies of the account and the ready template (0.5 s each), rate-limit leases and id
blocks add a few calls per hundred sends. The send queue is reached by the outbox relay,
after the answer (not counted here: it is not on the request's path).

Run: .venv/bin/python -m benchmarks.send_latency [requests]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter

from moto import mock_aws

from benchmarks.common import BENCH_KEY as KEY
from benchmarks.common import (
    percentile,
    quiet_environment,
    sending_stack,
    set_limits,
    timed_requests,
)
from benchmarks.goals import Figure, record
from local import dynamodb
from mmsapi.models import RateLimits
from mmsapi.services.api import handle

# Under the default throughput (100 a second per action): the pace of the second run.
PACED_PER_SECOND = 50


def run(requests: int) -> None:
    quiet_environment()
    dynamodb.install()  # DynamoDB's transactions as AWS runs them (the local runtime's too)
    with mock_aws():
        ctx, account, mms_id = sending_stack("Hi {$name|you}", "Hello {$name|you}")
        body = (
            f"<request><action>sendSavedMMS</action><api-key>{KEY}</api-key>"
            f"<mms-id>{mms_id}</mms-id><to>14044790000</to><from>28444</from>"
            "<service-id>12345</service-id><fallback-sms-text>see</fallback-sms-text>"
            "<custom-subject>For {$name|you}</custom-subject><data><name>Bill</name></data>"
            "</request>"
        ).encode()
        handle(ctx, body, {}, "127.0.0.1")  # warm: account cache, id blocks, connections
        started = time.perf_counter()
        times, calls = timed_requests(ctx, body, requests)
        wall = time.perf_counter() - started
        set_limits(ctx, account.account_id, RateLimits())  # the account's defaults
        time.sleep(1.1)  # past the second that the burst used up
        paced = min(requests, 150)
        paced_times, paced_calls = timed_requests(ctx, body, paced, PACED_PER_SECOND)
    print(f"sendSavedMMS via the API handler, in-process, emulated AWS (moto), {requests} sends")
    print(f"{'sends/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}  AWS calls per send")
    _line(f"{requests / wall:8.1f}", times, calls, requests)
    print(f"the account's default limits, {paced} sends at {PACED_PER_SECOND}/s:")
    _line(f"{'paced':>8}", paced_times, paced_calls, paced)
    record(
        Figure("warm sendSavedMMS: AWS calls per send (burst)", sum(calls.values()) / requests, 2),
        Figure(
            f"warm sendSavedMMS: AWS calls per send (default limits, {PACED_PER_SECOND}/s)",
            sum(paced_calls.values()) / paced,
            2,
        ),
    )


def _line(first: str, times: list[float], calls: Counter[str], requests: int) -> None:
    per_send = {k: v / requests for k, v in sorted(calls.items())}
    summary = ", ".join(f"{k} {v:.2f}" for k, v in per_send.items())
    print(
        f"{first} {percentile(times, 0.5):8.1f} {percentile(times, 0.99):8.1f} "
        f"{statistics.fmean(times):8.1f}  {sum(per_send.values()):.2f} ({summary})"
    )


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
