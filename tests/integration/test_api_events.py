"""The API Lambda handler driven by the real-shape events in events/api/."""

from __future__ import annotations

import pytest

from tests.conftest import Client, load_event
from tests.integration.helpers import answer
from tests.lambda_context import FakeLambdaContext, load_handler_module


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("api/save-text-current.json", {"status": "Success"}),
        ("api/save-text-legacy.json", {"STATUS": "Success"}),
        ("api/save-form-legacy.json", {"STATUS": "Success"}),
        ("api/list-get-query.json", {"status": "Success", "total-results": "0"}),
        ("api/delete-unknown.json", {"status": "Failure", "error-code": "E241"}),
        ("api/wrong-key.json", {"status": "Failure", "error-code": "E104"}),
        ("api/xxe.json", {"status": "Failure", "error-code": "E108"}),
    ],
)
def test_event_gets_its_answer(client: Client, event: str, expected: dict[str, str]) -> None:
    # Given the demo account and an API Gateway event
    handler = load_handler_module("api").handler
    # When the handler runs
    result = handler(load_event(event), FakeLambdaContext())
    # Then it answers HTTP 200 with XML holding the expected fields
    assert result["statusCode"] == 200
    assert result["headers"]["Content-Type"].startswith("application/xml")
    got = answer(result["body"].encode("utf-8"))
    assert {k: got.get(k) for k in expected} == expected
