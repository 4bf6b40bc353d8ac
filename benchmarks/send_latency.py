"""sendSavedMMS through the API handler in-process against the emulated AWS: what a
burst of sends costs before delivery (which runs behind the send queue).

Run: .venv/bin/python -m benchmarks.send_latency [requests]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter

from moto import mock_aws

from benchmarks.common import BENCH_KEY as KEY
from benchmarks.common import percentile, quiet_environment, sending_stack, timed_requests
from mmsapi.services.api import handle


def run(requests: int) -> None:
    quiet_environment()
    with mock_aws():
        ctx, _, mms_id = sending_stack("Hi {$name|you}", "Hello {$name|you}")
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
    per_send = {k: v / requests for k, v in sorted(calls.items())}
    print(f"sendSavedMMS via the API handler, in-process, emulated AWS (moto), {requests} sends")
    print(f"{'sends/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}  AWS calls per send")
    summary = ", ".join(f"{k} {v:.2f}" for k, v in per_send.items())
    print(
        f"{requests / wall:8.1f} {percentile(times, 0.5):8.1f} {percentile(times, 0.99):8.1f} "
        f"{statistics.fmean(times):8.1f}  {sum(Counter(per_send).values()):.2f} ({summary})"
    )


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
