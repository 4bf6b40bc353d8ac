"""The postback function counts events by code, and the E999 alarm watches that count."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from local.translate import PARAMETER_SETS, translate
from mmsapi.models import Account
from mmsapi.services.postback import count_postback
from mmsapi.settings import get_settings
from tests.conftest import load_event
from tests.lambda_context import FakeLambdaContext, load_handler_module


def emitted(out: str, metric: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents printed for `metric`: namespace, dimensions, value."""
    found = []
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            names = [m["Name"] for m in directive["Metrics"]]
            if metric in names:
                dims = {name: document[name] for name in directive["Dimensions"][0]}
                found.append(
                    {
                        "namespace": directive["Namespace"],
                        "dimensions": dims,
                        "value": document[metric],
                    }
                )
    return found


@pytest.fixture
def postback_function_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The environment that the translated template gives PostbackFunction (Powertools' part)."""
    template = translate(PARAMETER_SETS["defaults"])
    env = template["Resources"]["PostbackFunction"]["Properties"]["Environment"]["Variables"]
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.setenv(name, str(env[name]))
    get_settings.cache_clear()
    yield template
    get_settings.cache_clear()


def test_the_e999_alarm_watches_what_the_postback_function_emits(
    postback_function_env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the E999 alarm of the template
    alarm = postback_function_env["Resources"]["E999Alarm"]["Properties"]
    # When the postback function counts an E999 event
    count_postback({"id": "e-1", "detail": {"code": "E999", "account_id": "demo", "fields": {}}})
    # Then it printed exactly the metric, namespace and dimensions the alarm watches
    [point] = emitted(capsys.readouterr().out, alarm["MetricName"])
    assert point["namespace"] == alarm["Namespace"]
    assert point["dimensions"] == {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert point["value"] == [1.0]  # EMF values are lists


def test_an_event_without_code_is_not_counted(capsys: pytest.CaptureFixture[str]) -> None:
    count_postback({"id": "x", "detail": {"account_id": "demo"}})
    assert emitted(capsys.readouterr().out, "Postbacks") == []


class NoAccounts:
    def get(self, account_id: str) -> Account | None:
        return None


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(("receive_count", "counted"), [("1", 1), ("2", 0)])
def test_the_handler_counts_an_event_on_its_first_receipt_only(
    receive_count: str,
    counted: int,
    postback_function_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a postback record received for the first time, or again after a failed attempt
    record = load_event("postback/n003.json")["Records"][0]
    record["attributes"]["ApproximateReceiveCount"] = receive_count
    # Its module makes its stores on import, without a stack here: forgotten afterwards
    monkeypatch.delitem(sys.modules, "functions_postback_app", raising=False)
    app = load_handler_module("postback")
    monkeypatch.setattr(app, "accounts", NoAccounts())  # dropped: nothing to deliver
    # When the handler processes it
    app.handler({"Records": [record]}, FakeLambdaContext())
    # Then it is counted under its code once, not once per attempt
    points = emitted(capsys.readouterr().out, "Postbacks")
    assert len(points) == counted
    assert all(point["dimensions"]["code"] == "N003" for point in points)
