"""saveMMS latency through the API handler in-process, against the emulated AWS.

Prints p50/p99 for a text-only template and for text + one image served from a
local HTTP server, and the AWS calls made per request.
Run: .venv/bin/python -m benchmarks.save_latency [requests]
"""

from __future__ import annotations

import os
import statistics
import sys
from collections import Counter

from moto import mock_aws
from pytest_httpserver import HTTPServer

from benchmarks.common import percentile, quiet_environment, timed_requests
from local.functions import function_environment
from local.stack import provision
from mmsapi.services.accounts import create_account
from mmsapi.services.api import handle
from mmsapi.services.context import context
from mmsapi.settings import get_settings
from tests.media import photo_jpeg

KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"


def run(requests: int) -> None:
    quiet_environment()
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    server.expect_request("/photo.jpg").respond_with_data(
        photo_jpeg(1600, 1200), content_type="image/jpeg"
    )
    image_url = server.url_for("/photo.jpg")
    with mock_aws():
        stack = provision("mmsapi-bench")
        os.environ.update(function_environment(stack))
        get_settings.cache_clear()
        ctx = context()
        create_account(ctx.accounts, "bench", api_key=KEY)
        cases = {
            "text only": "<slide><message-text>Hello {$name|you}</message-text></slide>",
            "text + 1 image (1600x1200 JPEG)": (
                f"<slide><image><url>{image_url}</url></image>"
                "<message-text>Hello</message-text></slide>"
            ),
        }
        print(f"saveMMS via the API handler, in-process, emulated AWS (moto), {requests} requests")
        print(f"{'case':34} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}  AWS calls per request")
        for label, slides in cases.items():
            body = (
                f"<request><action>saveMMS</action><api-key>{KEY}</api-key><name>b</name>"
                f"<message-subject>s</message-subject>{slides}</request>"
            ).encode()
            handle(ctx, body, {}, "127.0.0.1")  # warm: account cache, id block, connections
            times, calls = timed_requests(ctx, body, requests)
            per_request = Counter({k: v / requests for k, v in calls.items()})
            summary = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_request.items()))
            print(
                f"{label:34} {percentile(times, 0.5):8.1f} {percentile(times, 0.99):8.1f} "
                f"{statistics.fmean(times):8.1f}  {sum(per_request.values()):.2f} ({summary})"
            )
    server.stop()


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
