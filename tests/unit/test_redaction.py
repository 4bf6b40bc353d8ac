"""mmsapi.redact: no API key, secret, signature, password or view token survives in a log
line, whatever form the line holds it in; the names and ids an operator needs stay."""

from __future__ import annotations

import io
import json
import logging
from urllib.parse import quote

import pytest

from mmsapi.redact import REDACTED, RedactingFilter, RedactingFormatter, redact

KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"
VIEW = "Zm9vYmFyYmF6cXV4cXV1eA"  # a view secret (token_urlsafe(18))
LEGACY = f"<REQUEST><ACTION>getMMSTemplates</ACTION><API_KEY>{KEY}</API_KEY></REQUEST>"


@pytest.mark.parametrize(
    "line",
    [
        # A legacy GET's request line: the XML document percent-encoded in the query
        f"GET /API/wxml/1.3/index.php?XMLDATA={quote(LEGACY)} -> 200 (3 ms)",
        f"GET /API/wxml/1.3/index.php?XMLDATA={quote(LEGACY, safe='')} HTTP/1.1",
        f"GET /?xml={LEGACY}&x=1",
        # The key as its own parameter, in every spelling clients use
        f"GET /ep/v1?api-key={KEY}&action=getMMSTemplates",
        f"GET /ep/v1?API_KEY={KEY}",
        f"GET /ep/v1?action=x&key={KEY}",
        f"api_key={KEY}&action=saveMMS",
        # XML bodies, raw and escaped
        f"<request><api-key>{KEY}</api-key></request>",
        f"&lt;api-key&gt;{KEY}&lt;/api-key&gt;",
        # Mappings: JSON and Python reprs (events, headers)
        json.dumps({"queryStringParameters": {"API_KEY": KEY}}),
        json.dumps({"headers": {"authorization": f"Bearer {KEY}"}}),
        str({"x-api-key": KEY}),
        json.dumps({"postback_secret": KEY, "mm7_password": KEY}),
        # Header lines and credentials without their name
        f"Authorization: Basic {KEY}",
        f"X-MMS-Signature: sha256={'ab' * 32}",
        f"MM7 submit failed with Basic {KEY}",
    ],
)
def test_keys_and_secrets_are_redacted(line: str) -> None:
    redacted = redact(line)
    assert KEY not in redacted
    assert "ab" * 32 not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    "line",
    [
        f"GET /v/123.{VIEW} -> 200 (2 ms)",
        f'{{"rawPath":"/v/123.{VIEW}","pathParameters":{{"token":"123.{VIEW}"}}}}',
        f"fallback link https://mms.example.com/v/123.{VIEW} sent",
        f"GET %2Fv%2F123.{VIEW}",
    ],
)
def test_view_tokens_keep_their_send_id_only(line: str) -> None:
    redacted = redact(line)
    assert VIEW not in redacted
    assert "123." in redacted


@pytest.mark.parametrize(
    "line",
    [
        f"GET /v/mo.ZGVtbw.0123456789abcdef.2.{VIEW} -> 302 (3 ms)",
        f"<file>https://mms.example.com/v/mo.ZGVtbw.0123456789abcdef.1.{VIEW}</file>",
        f"GET %2Fv%2Fmo.ZGVtbw.0123456789abcdef.1.{VIEW}",
    ],
)
def test_received_mms_file_links_keep_all_but_their_secret(line: str) -> None:
    redacted = redact(line)
    assert VIEW not in redacted
    assert "mo.ZGVtbw.0123456789abcdef." in redacted


def test_ordinary_lines_are_left_alone() -> None:
    line = "answered action=saveMMS account=4f2a mms-id=17 tracking-id=abc.def host=example.com"
    assert redact(line) == line


def test_powertools_lines_stay_json_and_hold_no_secret() -> None:
    # Given the product's formatter and a line with the event and an exception in it
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter())
    std = logging.getLogger("test-redaction-powertools")
    std.addHandler(handler)
    std.propagate = False
    try:
        event = {"rawQueryString": f"API_KEY={KEY}", "body": LEGACY, "rawPath": f"/v/9.{VIEW}"}
        try:
            raise ValueError(f"bad request {LEGACY}")
        except ValueError:
            std.exception("failed", extra={"event": event})
    finally:
        std.removeHandler(handler)
    # Then the line is still one JSON document, and neither secret is in it
    text = stream.getvalue()
    assert KEY not in text
    assert VIEW not in text
    logged = json.loads(text)
    assert logged["event"]["rawPath"] == f"/v/9.{REDACTED}"


def test_the_local_filter_redacts_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    std = logging.getLogger("test-redaction-local")
    std.addHandler(handler)
    std.addFilter(RedactingFilter())
    std.propagate = False
    try:
        std.warning("code 400, message Bad request syntax (%r)", f"GET /?api-key={KEY}")
        try:
            raise ValueError(f"/v/5.{VIEW}")
        except ValueError:
            std.exception("failed")
    finally:
        std.removeHandler(handler)
    text = stream.getvalue()
    assert KEY not in text
    assert VIEW not in text
    assert "/v/5." in text
