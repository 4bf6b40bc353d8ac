"""MaxRequestBytes: only sizes that a Lambda payload can carry, and the answer beyond it."""

from __future__ import annotations

import base64
import copy
import json
import math

import pytest

from local.stack import load_template
from mmsapi.settings import Settings, get_settings
from tests.conftest import load_event
from tests.integration.helpers import answer
from tests.lambda_context import FakeLambdaContext, load_handler_module

# Lambda's synchronous invocation payload (the whole event, as JSON).
LAMBDA_PAYLOAD_BYTES = 6_291_456
# The event around the body: HTTP API request lines and headers are capped at 10 KiB;
# the request context, query string and JSON framing are a few KiB more.
ENVELOPE_BYTES = 64 * 1024


def test_largest_allowed_body_fits_a_lambda_event_even_base64_encoded() -> None:
    # Given the MaxRequestBytes parameter of the template
    parameter = load_template()["Parameters"]["MaxRequestBytes"]
    largest = int(parameter["MaxValue"])
    # When the largest body it allows is base64-encoded into the event
    encoded = 4 * math.ceil(largest / 3)
    # Then the event still fits Lambda's payload, envelope included
    assert encoded + ENVELOPE_BYTES <= LAMBDA_PAYLOAD_BYTES
    # And the default is allowed, and is the settings' default
    assert int(parameter["MinValue"]) <= int(parameter["Default"]) <= largest
    assert int(parameter["Default"]) == Settings().max_request_bytes


def test_largest_body_event_is_under_the_payload_limit_as_json() -> None:
    # Given a real-shape event carrying the largest allowed body as binary
    largest = int(load_template()["Parameters"]["MaxRequestBytes"]["MaxValue"])
    event = copy.deepcopy(load_event("api/save-text-current.json"))
    event["body"] = base64.b64encode(b"\xff" * largest).decode("ascii")
    event["isBase64Encoded"] = True
    # Then, serialised as Lambda receives it, it leaves room for the largest headers
    size = len(json.dumps(event).encode("utf-8"))
    assert size + 10 * 1024 <= LAMBDA_PAYLOAD_BYTES, size


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_body_over_the_limit_is_answered_e100_too_large(
    monkeypatch: pytest.MonkeyPatch, base64_encoded: bool
) -> None:
    # Given a limit of 2048 bytes
    monkeypatch.setenv("MMS_MAX_REQUEST_BYTES", "2048")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "mmsapi-tests")
    get_settings.cache_clear()
    handler = load_handler_module("api").handler

    def post(body: bytes) -> dict[str, str]:
        event = copy.deepcopy(load_event("api/save-text-current.json"))
        if base64_encoded:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = body.decode(), False
        result = handler(event, FakeLambdaContext())
        assert result["statusCode"] == 200
        return answer(result["body"].encode("utf-8"))

    try:
        # When a body of exactly the limit is posted, Then it is read (refused for its content)
        at_limit = post(b"x" * 2048)
        assert at_limit["error-code"] == "E100"
        assert "too large" not in at_limit["error-info"]
        # When one byte more is posted, Then E100 says it is too large
        over = post(b"x" * 2049)
        assert over["error-code"] == "E100"
        assert "too large" in over["error-info"]
    finally:
        get_settings.cache_clear()
