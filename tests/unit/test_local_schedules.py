"""The local runtime runs the template's EventBridge schedules (the sweeper)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from local.schedules import Schedule, SchedulePoller, rate_seconds, schedules
from local.stack import Stack


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(5 minutes)", 300), ("rate(1 minute)", 60), ("rate(2 hours)", 7200)],
)
def test_rate_expressions_give_their_period(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["cron(0 12 * * ? *)", "rate(five minutes)", "rate(5)"])
def test_other_expressions_are_not_run(expression: str) -> None:
    assert rate_seconds(expression) is None


def test_the_sweeper_schedule_of_the_template_is_found(stack: Stack) -> None:
    # Given the translated template: When its schedules are read
    found, skipped = schedules(stack)
    # Then the sweeper runs every five minutes, and nothing is skipped
    assert [(s.function, s.seconds) for s in found] == [("SweeperFunction", 300)]
    assert skipped == []


class _Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.ticked = threading.Event()

    def invoke(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.ticked.set()


def test_a_tick_invokes_the_function_with_a_scheduled_event(stack: Stack) -> None:
    recorder = _Recorder()
    stop = threading.Event()
    poller = SchedulePoller(
        Schedule("SweeperFunctionSweep", "SweeperFunction", 0.05),
        recorder,  # type: ignore[arg-type]
        stop,
        stack,
    )
    poller.start()
    assert recorder.ticked.wait(5)
    stop.set()
    poller.join(5)
    event = recorder.events[0]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"][0].endswith(":rule/mmsapi-test-SweeperFunctionSweep")
