"""mmsapi/batch.py: SQS batches whose failed records alone come back."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

import pytest

from mmsapi.batch import BatchFailedError, SqsRecord, process_batch

ambient: ContextVar[str] = ContextVar("ambient", default="")


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"h{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(i + 1)},
            }
            for i, body in enumerate(bodies)
        ]
    }


def fail_on_bad(record: SqsRecord) -> None:
    if record.body == "bad":
        raise RuntimeError("bad record")


@pytest.mark.parametrize("concurrent", [False, True])
def test_only_the_failed_records_are_reported(concurrent: bool) -> None:
    # Given a batch whose second and fourth records fail
    event = sqs_event("ok", "bad", "ok", "bad")
    # When it is processed
    result = process_batch(event, fail_on_bad, concurrent=concurrent)
    # Then those two, and only they, come back
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}


def test_a_whole_failed_batch_is_reported_or_raised_as_asked() -> None:
    event = sqs_event("bad", "bad")
    assert len(process_batch(event, fail_on_bad)["batchItemFailures"]) == 2
    with pytest.raises(BatchFailedError) as raised:
        process_batch(event, fail_on_bad, raise_if_all_fail=True)
    assert isinstance(raised.value.__cause__, RuntimeError)
    # One good record: reported, not raised
    assert process_batch(sqs_event("bad", "ok"), fail_on_bad, raise_if_all_fail=True) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}]
    }


def test_concurrent_records_run_apart_with_the_callers_context() -> None:
    # Given a context value set by the caller, and a handler that waits for all records
    ambient.set("invocation")
    started = threading.Barrier(3, timeout=5)
    seen: dict[str, tuple[str, int]] = {}

    def handle(record: SqsRecord) -> None:
        started.wait()  # all three at once, or the barrier times out
        seen[record.body] = (ambient.get(), record.receive_count)
        ambient.set(record.body)  # a record's own change stays its own

    # When the batch is processed concurrently
    result = process_batch(sqs_event("a", "b", "c"), handle, concurrent=True)
    # Then each record saw the caller's context, and none of their changes leaked back
    assert result == {"batchItemFailures": []}
    assert seen == {"a": ("invocation", 1), "b": ("invocation", 2), "c": ("invocation", 3)}
    assert ambient.get() == "invocation"


def test_a_record_reads_the_fields_of_the_lambda_event() -> None:
    record = SqsRecord(sqs_event("x")["Records"][0])
    assert (record.body, record.message_id, record.receipt_handle) == ("x", "m0", "h0")
    assert SqsRecord({"body": "", "messageId": "m"}).receive_count == 1


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": "x"}])
def test_an_event_without_records_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no Records"):
        process_batch(event, fail_on_bad)
