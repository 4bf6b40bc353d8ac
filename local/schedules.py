"""EventBridge schedules of the translated template, run locally: a thread per rule.

    for schedule in schedules(stack):           # rate(...) rules that target a function
        SchedulePoller(schedule, functions[schedule.function], stop_event).start()

Each tick invokes the function with a Scheduled Event, as EventBridge would. Only
`rate(...)` expressions are run; a cron rule is skipped and told at start.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.functions import LocalFunction
from local.stack import Stack

log = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\(\s*([0-9]{1,6})\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Schedule:
    rule: str  # logical id of the AWS::Events::Rule
    function: str  # logical id of the target function
    seconds: float


def rate_seconds(expression: str) -> float | None:
    """Seconds between two runs of `rate(N unit)`, or None for anything else (cron)."""
    found = _RATE.match(expression.strip())
    if found is None:
        return None
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2).rstrip("s")]


def schedules(stack: Stack) -> tuple[list[Schedule], list[str]]:
    """The template's scheduled rules that target one of its functions, and what is skipped."""
    found: list[Schedule] = []
    skipped: list[str] = []
    resources = stack.template["Resources"]
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource.get("Type") != "AWS::Events::Rule" or "ScheduleExpression" not in props:
            continue
        seconds = rate_seconds(str(props["ScheduleExpression"]))
        for target in props.get("Targets", []):
            arn = target.get("Arn")
            function = arn.get("Fn::GetAtt", [""])[0] if isinstance(arn, dict) else ""
            if resources.get(function, {}).get("Type") != "AWS::Lambda::Function":
                continue
            if seconds is None:
                skipped.append(f"{logical_id}: {props['ScheduleExpression']} (only rate() runs)")
                continue
            found.append(Schedule(logical_id, function, seconds))
    return found, skipped


def scheduled_event(schedule: Schedule, rule_arn: str, region: str, account: str) -> dict[str, Any]:
    """The event EventBridge gives a function on a schedule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class SchedulePoller(threading.Thread):
    """Invokes one function every `schedule.seconds` until stopped."""

    def __init__(
        self, schedule: Schedule, function: LocalFunction, stop: threading.Event, stack: Stack
    ) -> None:
        super().__init__(name=f"schedule-{schedule.rule}", daemon=True)
        self.schedule = schedule
        self.function = function
        self.stop = stop
        self.rule_arn = (
            f"arn:aws:events:{stack.region}:{stack.account_id}:rule/{stack.name}-{schedule.rule}"
        )
        self.region = stack.region
        self.account = stack.account_id

    def run(self) -> None:
        while not self.stop.wait(self.schedule.seconds):
            event = scheduled_event(self.schedule, self.rule_arn, self.region, self.account)
            try:
                self.function.invoke(event)
            except Exception:  # EventBridge retries; locally the next tick comes
                log.exception("%s: scheduled run failed", self.schedule.function)
