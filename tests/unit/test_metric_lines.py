"""Metrics written by threads beside log lines: every line of stdout is one JSON document
(CloudWatch reads EMF line by line; a line holding two documents loses both)."""

from __future__ import annotations

import io
import json
import sys
import threading
import time

import pytest

from mmsapi.observability import count, flush_tallies, logger, tallied, tally


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


def test_tallied_points_are_printed_as_one_document_per_name_and_dimensions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flush_tallies()  # what earlier tests counted outside a handler
    capsys.readouterr()

    # Given a batch's postbacks counted from 4 threads: 30 N101, 20 N102, 5 failed
    def work(n: int) -> None:
        for code in ["N101"] * 30 + ["N102"] * 20:
            if n == 0:
                tally("PostbacksDelivered", code=code)
        if n == 1:
            for _ in range(5):
                tally("PostbackAttemptsFailed", code="N101")

    with tallied():
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert capsys.readouterr().out == ""  # nothing printed before the end
    # Then the end of the invocation printed one EMF document per metric and code
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    points = {
        (d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], d["code"]): d for d in documents
    }
    assert len(documents) == len(points) == 3
    assert points["PostbacksDelivered", "N101"]["PostbacksDelivered"] == [30.0]
    assert points["PostbacksDelivered", "N102"]["PostbacksDelivered"] == [20.0]
    assert points["PostbackAttemptsFailed", "N101"]["PostbackAttemptsFailed"] == [5.0]
    # And the next invocation starts from nothing
    flush_tallies()
    assert capsys.readouterr().out == ""


def test_tallies_are_printed_when_the_invocation_fails(capsys: pytest.CaptureFixture[str]) -> None:
    flush_tallies()
    capsys.readouterr()

    def failing_batch() -> None:
        with tallied():
            tally("PostbacksPublished", code="N003")
            raise RuntimeError("the batch failed")

    with pytest.raises(RuntimeError):
        failing_batch()
    [document] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert document["PostbacksPublished"] == [1.0]
