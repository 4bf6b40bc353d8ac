"""local.http_api: routes, events and answers, as API Gateway's HTTP API makes them."""

from __future__ import annotations

import base64
import json

import pytest

from local.http_api import (
    MAX_BODY_BYTES,
    HttpRequest,
    Route,
    find_route,
    http_answer,
    http_event,
    routes_from_template,
)
from local.stack import load_template


def test_every_http_api_event_of_the_template_is_a_route() -> None:
    # Given template.yaml
    template = load_template()
    # When its routes are read
    routes = routes_from_template(template)
    # Then each HttpApi event of each function is there
    declared = {
        (str(e["Properties"]["Method"]).upper(), str(e["Properties"]["Path"]), logical_id)
        for logical_id, r in template["Resources"].items()
        if r.get("Type") == "AWS::Serverless::Function"
        for e in r["Properties"].get("Events", {}).values()
        if e.get("Type") == "HttpApi"
    }
    assert {(r.method, r.path, r.function) for r in routes} == declared


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/ep/v1/", ("POST /ep/v1", {})),
        ("GET", "/ep/v1", ("GET /ep/v1", {})),
        ("GET", "/items/7", ("GET /items/{id}", {"id": "7"})),
        ("GET", "/items/all", ("GET /items/all", {})),
        ("PUT", "/files/a/b.txt", ("ANY /files/{proxy+}", {"proxy": "a/b.txt"})),
        ("DELETE", "/ep/v1", ("$default", {})),
    ],
)
def test_routes_are_chosen_like_api_gateway(
    method: str, path: str, expected: tuple[str, dict[str, str]]
) -> None:
    # Given exact, parameter, greedy and default routes
    routes = sorted(
        [
            Route("POST", "/ep/v1", "Api"),
            Route("GET", "/ep/v1", "Api"),
            Route("GET", "/items/{id}", "Api"),
            Route("GET", "/items/all", "Api"),
            Route("ANY", "/files/{proxy+}", "Api"),
            Route("ANY", "$default", "Api"),
        ],
        key=lambda route: route.rank,
    )
    # When a request is routed
    found = find_route(routes, method, path)
    # Then the most specific route takes it
    assert found is not None
    assert (found[0].key, found[1]) == expected


@pytest.mark.parametrize(
    ("content_type", "body", "base64_encoded"),
    [
        ("application/xml", b"<request/>", False),
        ("text/xml; charset=utf-8", b"<request/>", False),
        ("application/x-www-form-urlencoded", b"xml=%3Crequest%2F%3E", True),
        ("", b"<request/>", True),
        ("application/xml", b"\xff\xfe<request/>", True),
    ],
)
def test_http_event_body_is_text_only_for_text_types(
    content_type: str, body: bytes, base64_encoded: bool
) -> None:
    # Given a request body with a content type
    headers = [("Content-Type", content_type)] if content_type else []
    # When it becomes a payload-2.0 event
    request = HttpRequest(
        method="POST",
        target="/ep/v1/?a=1&a=2&b=",
        headers=[*headers, ("Host", "127.0.0.1:3000"), ("Cookie", "s=1; t=2")],
        body=body,
        source_ip="127.0.0.1",
        protocol="HTTP/1.1",
    )
    event = http_event(
        request,
        route=Route("POST", "/ep/v1", "Api"),
        path_parameters={},
        account_id="123456789012",
    )
    # Then the body is text or base64 as API Gateway decides, and the rest has its shape
    assert event["isBase64Encoded"] is base64_encoded
    sent = base64.b64decode(event["body"]) if base64_encoded else event["body"].encode()
    assert sent == body
    assert event["routeKey"] == "POST /ep/v1"
    assert event["rawPath"] == "/ep/v1/"
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert "cookie" not in event["headers"]


def test_function_answers_become_http_answers() -> None:
    # Given the answers a payload-2.0 function can give
    binary = {
        "statusCode": 201,
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    # When API Gateway turns them into HTTP
    # Then base64 bodies are decoded and a bare value is a JSON 200
    assert http_answer(binary).body == b"\x00\x01"
    assert http_answer(binary).status == 201
    bare = http_answer({"ok": True})
    assert (bare.status, json.loads(bare.body)) == (200, {"ok": True})
    assert MAX_BODY_BYTES == 10 * 1024 * 1024  # API Gateway's payload limit
