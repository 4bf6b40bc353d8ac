"""Metrics written by threads beside log lines: every line of stdout is one JSON document
(CloudWatch reads EMF line by line; a line holding two documents loses both)."""

from __future__ import annotations

import io
import json
import sys
import threading
import time

import pytest

from mmsapi.observability import count, logger


class _Yielding(io.StringIO):
    """A stream that lets another thread run after every write, as a busy process may."""

    def write(self, text: str) -> int:
        written = super().write(text)
        time.sleep(0)
        return written


def test_concurrent_metrics_and_log_lines_never_share_a_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _Yielding()
    monkeypatch.setattr(sys, "stdout", out)
    for handler in logger.handlers:  # the logger writes to the stdout of its creation
        monkeypatch.setattr(handler, "stream", out)
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        for i in range(300):
            count("PostbacksDelivered", code=f"N10{n % 3}")
            logger.info("postback delivered", extra={"attempt": i})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = out.getvalue().splitlines()
    documents = [json.loads(line) for line in lines]  # fails on a shared or split line
    metrics = [d for d in documents if "_aws" in d]
    assert len(metrics) == 8 * 300
    assert len(documents) - len(metrics) == 8 * 300
    assert all(d["PostbacksDelivered"] == [1.0] for d in metrics)
