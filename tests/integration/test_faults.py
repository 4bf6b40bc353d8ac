"""Fault injection (local/faults.py): functions' AWS calls fail as AWS fails them, and go
through botocore's retries like real faults; the harness is never faulted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from local.aws_gate import acting_as
from local.faults import FaultPlan
from local.stack import Stack
from mmsapi.store import aws


@pytest.fixture
def table(stack: Stack) -> str:
    return stack.physical["TemplatesTable"]


def _plan(fraction: float, kinds: tuple[str, ...]) -> Iterator[FaultPlan]:
    plan = FaultPlan(fraction, seed=1, kinds=kinds)
    plan.install()
    try:
        yield plan
    finally:
        plan.uninstall()


def _get(table: str) -> None:
    aws.dynamodb().get_item(TableName=table, Key={"mms_id": {"N": "1"}})


def test_a_throttle_is_retried_by_botocore_then_told_as_aws_tells_it(table: str) -> None:
    # Given every attempt of the functions' calls throttled
    for plan in _plan(1.0, ("throttle",)):
        # When ApiFunction reads a template
        with acting_as("ApiFunction"), pytest.raises(ClientError) as caught:
            _get(table)
        # Then botocore tried 5 times (standard mode, max_attempts=4 retries: store/aws.py)
        # and answers DynamoDB's throttling error
        error = caught.value.response
        assert error["Error"]["Code"] == "ProvisionedThroughputExceededException"
        assert error["ResponseMetadata"]["RetryAttempts"] == 4
        # (at least: a thread another test left running may be faulted meanwhile)
        assert plan.figures()["throttle dynamodb"] >= 5
        # And the harness is never faulted (every attempt fails, yet this read succeeds)
        _get(table)


def test_a_fault_that_passes_is_mended_by_the_retries(table: str) -> None:
    # Given a third of the attempts failing with 5xx
    for plan in _plan(0.3, ("5xx",)):
        # When a function reads 30 times, every read succeeds after botocore's retries
        with acting_as("ApiFunction"):
            for _ in range(30):
                _get(table)
        assert plan.figures()["5xx"] > 0
        assert plan.attempts >= 30 + plan.total()


def test_a_timeout_raises_botocores_timeout_after_the_retries(table: str) -> None:
    for plan in _plan(1.0, ("timeout",)):
        with acting_as("ApiFunction"), pytest.raises((ReadTimeoutError, ConnectTimeoutError)):
            _get(table)
        assert plan.figures()["timeout"] == 5  # every attempt, as for a throttle


@pytest.mark.aws_faults(1.0, 3)
def test_the_marker_faults_the_functions_of_a_test(table: str) -> None:
    with (
        acting_as("ApiFunction"),
        pytest.raises((ClientError, ReadTimeoutError, ConnectTimeoutError)),
    ):
        _get(table)
