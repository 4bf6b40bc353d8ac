"""Shared fixtures: an emulated AWS built from template.yaml, an account, requests."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from local import dynamodb
from local.aws_gate import AwsGate, active_gate
from local.faults import FaultPlan
from local.functions import by_name_and_arn, describe_functions, function_environment
from local.stack import Stack, provision
from local.translate import PARAMETER_SETS, translate
from mmsapi.models import Account, Dialect, Shortcode
from mmsapi.services import context as context_module
from mmsapi.services.accounts import create_account
from mmsapi.services.api import handle
from mmsapi.services.context import Context
from mmsapi.settings import get_settings
from mmsapi.store import aws

# Every answer and postback a test makes is validated against schemas/ (the test fails
# if one does not match; the terminal summary counts them).
pytest_plugins = ("tests.schema_check",)

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SAMPLE_KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"


def load_event(name: str) -> dict[str, Any]:
    """An event file from events/<function>/<case>.json."""
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "mmsapi-tests",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _fresh() -> None:
    get_settings.cache_clear()
    aws.reset()
    context_module.reset()


# Every AWS call of the session, as the IAM gate counted them (pytest_terminal_summary).
_GATE_TOTALS: Counter[str] = Counter()
_GATE_DENIALS: list[str] = []


def _gsi_lag(request: pytest.FixtureRequest) -> float:
    marker = request.node.get_closest_marker("gsi_lag")
    return float(marker.args[0]) if marker is not None else 0.0


def _aws_faults(request: pytest.FixtureRequest) -> FaultPlan | None:
    marker = request.node.get_closest_marker("aws_faults")
    return FaultPlan(float(marker.args[0]), int(marker.args[1])) if marker is not None else None


@pytest.fixture
def stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Given an emulated AWS with every resource of template.yaml, behind the IAM gate.

    Every AWS call is checked against the role of the function that made it (the
    translated template's), and its parameters against AWS's constraints: a call the
    role does not allow is refused with AWS's AccessDenied and fails the test.
    Tests marked `state_machines_execute` get state machines that really run
    (moto's interpreter); the others only record executions. Tests marked
    `gsi_lag(seconds)` get index reads that do not see recent writes; tests marked
    `aws_faults(fraction, seed)` get that fraction of the functions' AWS calls failing
    (local/faults.py: throttles, 5xx, timeouts, through botocore's retries).
    """
    execute = request.node.get_closest_marker("state_machines_execute") is not None
    dynamodb.install()  # DynamoDB's atomic writes and transactions (local/dynamodb.py)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": execute}}):
        built = provision("mmsapi-test")
        gate = AwsGate.for_stack(
            built, translate(PARAMETER_SETS["defaults"]), gsi_lag_seconds=_gsi_lag(request)
        )
        gate.install()
        faults = _aws_faults(request)
        if faults is not None:
            faults.install()
        # Every function's environment, as the local runtime merges them.
        for name, value in function_environment(built).items():
            monkeypatch.setenv(name, value)
        # Tests serve media from pytest-httpserver on loopback, as the local runtime does.
        monkeypatch.setenv("MMS_ALLOW_LOOPBACK_MEDIA", "true")
        # Tests have a carrier (the simulated MMSC, or none that a test stands in for), as
        # the local runtime does: sends are accepted. E619 tests set it to false.
        monkeypatch.setenv("MMS_CARRIER_PROVISIONED", "true")
        monkeypatch.setenv("MMS_FETCH_READ_TIMEOUT", "3")
        monkeypatch.setenv("MMS_FETCH_TOTAL_TIMEOUT", "8")
        _fresh()
        try:
            yield built
        finally:
            if faults is not None:
                faults.uninstall()
            gate.uninstall()
            _fresh()
            _GATE_TOTALS.update(gate.summary())
            _GATE_DENIALS.extend(gate.problems())
    problems = gate.problems()
    if problems:
        pytest.fail(
            "AWS would refuse these calls (IAM gate):\n" + "\n".join(problems), pytrace=False
        )


@pytest.fixture
def iam_gate(stack: Stack) -> AwsGate:
    """The IAM gate of this test's stack."""
    gate = active_gate()
    assert gate is not None
    return gate


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _GATE_TOTALS:
        return
    totals = dict(_GATE_TOTALS)
    harness, denied = totals.pop("harness", 0), totals.pop("denied", 0)
    per_function = ", ".join(f"{name} {count}" for name, count in sorted(totals.items()))
    terminalreporter.write_line(
        f"IAM gate: {sum(totals.values())} calls checked ({per_function}), "
        f"{harness} by the harness, {denied} denied"
    )
    for line in _GATE_DENIALS:
        terminalreporter.write_line(f"  denied: {line}")


@pytest.fixture
def functions_bridged(stack: Stack) -> Stack:
    """Given the stack's functions loaded, and the Lambda tasks of executing state machines
    run by them (the real handlers), as in the local runtime."""
    from local.stepfunctions import install_lambda_bridge  # moto's ASL interpreter: slow

    functions = describe_functions(stack, gate=active_gate())
    for function in functions.values():
        function.load()
    callable_by = by_name_and_arn(functions)
    install_lambda_bridge(lambda name, event: callable_by[name].invoke(event))
    return stack


@pytest.fixture
def ctx(stack: Stack) -> Context:
    return context_module.context()


@dataclass
class Client:
    """Drives the API front door in-process, as API Gateway would."""

    ctx: Context
    api_key: str
    account: Account
    source_ip: str = "203.0.113.10"

    def post(self, xml: str | bytes, query: dict[str, str] | None = None) -> bytes:
        body = xml.encode("utf-8") if isinstance(xml, str) else xml
        return handle(self.ctx, body, query or {}, self.source_ip)


@pytest.fixture
def client(ctx: Context) -> Client:
    """Given the demo account of the documents (sample key, shortcode 28444, service 12345)."""
    account, key = create_account(
        ctx.accounts,
        "demo",
        shortcodes=[Shortcode(code="28444", country="US")],
        service_id="12345",
        postback_url="http://127.0.0.1:9/postback",
        postback_dialect=Dialect.CURRENT,
        api_key=SAMPLE_KEY,
    )
    return Client(ctx, key, account)
