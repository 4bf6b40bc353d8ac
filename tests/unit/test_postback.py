"""Postbacks: the XML of both dialects, the signature, delivery, and the SQS handler."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree
from werkzeug import Request, Response

from mmsapi.models import Account, Dialect
from mmsapi.services.postback import (
    POSTBACK_FIELDS,
    DeliveryError,
    MalformedEventError,
    build_postback,
    deliver,
    handle_event,
    sign,
)
from mmsapi.settings import Settings, get_settings
from mmsapi.xml.dialect import LEGACY_ONLY
from tests.conftest import load_event
from tests.lambda_context import FakeLambdaContext, load_handler_module

SECRET = "whsec-test-0123456789"

# The public documents' postback examples (legacy) and their current-dialect form.
SPEC_N003_LEGACY = """
<POSTBACK>
    <ORIGIN>MMS_MT</ORIGIN>
    <CODE>N003</CODE>
    <MMSID>35674</MMSID>
</POSTBACK>"""
SPEC_E002_LEGACY = """
<POSTBACK>
    <ORIGIN>MMS_MT</ORIGIN>
    <CODE>E002</CODE>
    <MMSID>35674</MMSID>
    <AUDIONAME>http://www.yoursite.com/audio/1.mp3</AUDIONAME>
</POSTBACK>"""
SPEC_N003_CURRENT = (
    "<postback><origin>MMS_MT</origin><code>N003</code><mms-id>35674</mms-id></postback>"
)
SPEC_E002_CURRENT = (
    "<postback><origin>MMS_MT</origin><code>E002</code><mms-id>35674</mms-id>"
    "<audio-name>http://www.yoursite.com/audio/1.mp3</audio-name></postback>"
)

N003 = {"code": "N003", "account_id": "demo", "fields": {"mms-id": "35674"}}
E002 = {
    "code": "E002",
    "account_id": "demo",
    "fields": {"audio-name": "http://www.yoursite.com/audio/1.mp3", "mms-id": 35674},
}


def canonical(xml: str | bytes) -> bytes:
    """Exclusive C14N without insignificant whitespace: equal documents compare equal."""
    data = xml.encode() if isinstance(xml, str) else xml
    parser = etree.XMLParser(remove_blank_text=True)
    return bytes(etree.tostring(etree.fromstring(data.strip(), parser), method="c14n"))


@pytest.fixture
def settings() -> Settings:
    return Settings(allow_loopback_media=True, postback_timeout=2.0)


# ---- the XML -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("detail", "dialect", "expected"),
    [
        (N003, Dialect.LEGACY, SPEC_N003_LEGACY),
        (E002, Dialect.LEGACY, SPEC_E002_LEGACY),
        (N003, Dialect.CURRENT, SPEC_N003_CURRENT),
        (E002, Dialect.CURRENT, SPEC_E002_CURRENT),
    ],
)
def test_postback_matches_the_spec_examples(
    detail: dict[str, Any], dialect: Dialect, expected: str
) -> None:
    # Given an event detail of the documents' examples
    # When its postback is built in a dialect
    body = build_postback(detail, dialect)
    # Then it is the documented XML, with an XML declaration in UTF-8
    assert canonical(body) == canonical(expected)
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def test_legacy_n003_is_exactly_the_example_on_the_wire() -> None:
    # Given the N003 event, When built in the legacy dialect, Then the element string is exact
    body = build_postback(N003, Dialect.LEGACY)
    assert body.split(b"?>", 1)[1].strip() == (
        b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N003</CODE><MMSID>35674</MMSID></POSTBACK>"
    )


@pytest.mark.schema_exempt("every field holds 'v-<name>', to test their order")
def test_fields_follow_the_fixed_order_and_unknown_ones_are_dropped() -> None:
    # Given an N101 detail with its fields shuffled, one unknown and one None
    values = {name: f"v-{name}" for name in POSTBACK_FIELDS}
    shuffled = dict(reversed(list(values.items())))
    shuffled["campaign"] = "not a postback field"
    shuffled["handset"] = None  # type: ignore[assignment]
    detail = {"code": "N101", "account_id": "demo", "fields": shuffled}
    # When the postback is built
    root = etree.fromstring(build_postback(detail, Dialect.CURRENT))
    # Then origin and code come first, then the table's order, without the absent ones
    # (nor those of the legacy dialect only)
    names = [child.tag for child in root]
    expected = [n for n in POSTBACK_FIELDS if n != "handset" and n not in LEGACY_ONLY]
    assert names == ["origin", "code", *expected]


@pytest.mark.schema_exempt("every field holds 'x', to test the legacy names")
def test_legacy_names_of_every_field() -> None:
    # Given every field, When built in the legacy dialect
    detail = {"code": "N102", "fields": {name: "x" for name in POSTBACK_FIELDS}}
    root = etree.fromstring(build_postback(detail, Dialect.LEGACY))
    # Then the names are the uppercase, hyphen-free forms (and the aliases' first spelling)
    assert [child.tag for child in root] == [
        "ORIGIN",
        "CODE",
        "SENTAS",
        "STATUS",
        "MMSID",
        "AUDIONAME",
        "VIDEONAME",
        "IMAGENAME",
        "FROM",
        "FROM_MASK",
        "TO",
        "KEYWORD",
        "TRACKINGID",
        "SPID",
        "TIMESTAMP",
        "SUBJECT",
        "TEXT",
        "CONTENT",
        "STATUSDETAILS",
        "HANDSET",
        "AGGREGATORID",
        "CLIENT_REFERENCE",
    ]


def test_client_reference_is_echoed_and_escaped() -> None:
    # Given a client reference with XML-special characters
    detail = {"code": "N003", "fields": {"mms-id": "1", "client-reference": "a<b&c"}}
    # When built, Then it comes back intact after parsing
    root = etree.fromstring(build_postback(detail, Dialect.CURRENT))
    assert root.findtext("client-reference") == "a<b&c"


@pytest.mark.parametrize(
    "detail", [{}, {"code": ""}, {"code": 3}, {"code": "N003", "fields": ["mms-id"]}]
)
def test_malformed_detail_raises(detail: dict[str, Any]) -> None:
    with pytest.raises(MalformedEventError):
        build_postback(detail, Dialect.CURRENT)


# ---- the signature ---------------------------------------------------------------


def test_signature_verifies() -> None:
    # Given a body and a secret
    body = build_postback(N003, Dialect.CURRENT)
    # When it is signed
    header = sign(body, SECRET)
    # Then a receiver recomputing the HMAC over the exact body agrees
    scheme, _, digest = header.partition("=")
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert scheme == "sha256"
    assert hmac.compare_digest(digest, expected)
    # And any change of the body breaks it
    assert not hmac.compare_digest(header, sign(body + b" ", SECRET))


# ---- delivery --------------------------------------------------------------------


def test_delivery_sends_body_and_headers(httpserver: Any, settings: Settings) -> None:
    # Given a receiver answering 204
    httpserver.expect_request("/hooks/mms", method="POST").respond_with_data(b"", status=204)
    body = build_postback(E002, Dialect.LEGACY)
    # When the postback is delivered
    status = deliver(httpserver.url_for("/hooks/mms"), body, SECRET, "evt-1", settings)
    # Then the receiver got the exact body, signed, typed, identified
    assert status == 204
    request, _ = httpserver.log[-1]
    assert request.get_data() == body
    assert request.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert request.headers["X-MMS-Postback-Id"] == "evt-1"
    assert request.headers["User-Agent"] == settings.postback_user_agent
    signature = request.headers["X-MMS-Signature"]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)


def test_delivery_without_secret_sends_no_signature(httpserver: Any, settings: Settings) -> None:
    # Given an account without a postback secret
    httpserver.expect_request("/hook").respond_with_data(b"OK")
    # When delivered, Then no signature header is sent (an empty key proves nothing)
    deliver(httpserver.url_for("/hook"), b"<postback/>", "", "evt-2", settings)
    request, _ = httpserver.log[-1]
    assert "X-MMS-Signature" not in request.headers


@pytest.mark.parametrize("status", [301, 302, 400, 404, 410, 500, 503])
def test_non_2xx_raises(httpserver: Any, settings: Settings, status: int) -> None:
    # Given a receiver answering something other than 2xx
    headers = {"Location": "/elsewhere"} if status < 400 else {}
    httpserver.expect_request("/hook").respond_with_data(b"no", status=status, headers=headers)
    # When delivered, Then it raises so that SQS retries
    with pytest.raises(DeliveryError):
        deliver(httpserver.url_for("/hook"), b"<postback/>", SECRET, "evt-3", settings)


@pytest.mark.parametrize(
    "location", ["http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/"]
)
def test_redirect_to_private_is_refused(httpserver: Any, settings: Settings, location: str) -> None:
    # Given a receiver redirecting to a private or metadata address
    httpserver.expect_request("/hook").respond_with_data(
        b"", status=307, headers={"Location": location}
    )
    # When delivered
    with pytest.raises(DeliveryError) as raised:
        deliver(httpserver.url_for("/hook"), b"<postback/>", SECRET, "evt-4", settings)
    # Then the redirect is not followed (redirects never are) and the attempt fails
    assert "not followed" in raised.value.reason
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "http://[fd00::1]/hook", "ftp://example.com/hook"]
)
def test_refused_postback_url_raises(settings: Settings, url: str) -> None:
    # Given a postback URL the guard refuses, When delivered, Then it raises before connecting
    with pytest.raises(DeliveryError):
        deliver(url, b"<postback/>", SECRET, "evt-5", settings)


def test_slow_receiver_fails_within_the_timeout(httpserver: Any) -> None:
    # Given a receiver that answers only when released, and a 0.3 s postback timeout
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(2.0)  # bounded; released below so the shared server moves on
        return Response(b"late")

    httpserver.expect_request("/hook").respond_with_handler(slow)
    settings = Settings(allow_loopback_media=True, postback_timeout=0.3)
    # When delivered
    started = time.monotonic()
    with pytest.raises(DeliveryError):
        deliver(httpserver.url_for("/hook"), b"<postback/>", SECRET, "evt-6", settings)
    elapsed = time.monotonic() - started
    release.set()
    # Then it gives up at the timeout
    assert 0.3 <= elapsed < 0.9


# ---- handle_event and the Lambda handler ----------------------------------------------


class FakeAccounts:
    def __init__(self, *accounts: Account) -> None:
        self.accounts = {a.account_id: a for a in accounts}

    def get(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)


def account(account_id: str, url: str, **extra: Any) -> Account:
    return Account(
        account_id=account_id,
        name=account_id,
        key_hash="0" * 64,
        postback_url=url,
        postback_secret=SECRET,
        **extra,
    )


def bus_event(detail: dict[str, Any], event_id: str = "evt-7") -> dict[str, Any]:
    return {"id": event_id, "detail-type": "TemplateReady", "source": "mmsapi", "detail": detail}


def test_handle_event_delivers_in_the_account_dialect(httpserver: Any, settings: Settings) -> None:
    # Given a legacy-dialect account with a postback URL
    httpserver.expect_request("/hook").respond_with_data(b"OK")
    store = FakeAccounts(
        account("demo", httpserver.url_for("/hook"), postback_dialect=Dialect.LEGACY)
    )
    # When an N003 event is handled
    handle_event(bus_event(N003), store, settings)
    # Then the receiver got the legacy XML with the event id
    request, _ = httpserver.log[-1]
    assert canonical(request.get_data()) == canonical(SPEC_N003_LEGACY)
    assert request.headers["X-MMS-Postback-Id"] == "evt-7"


@pytest.mark.parametrize(
    "store",
    [
        FakeAccounts(),
        FakeAccounts(account("demo", "http://127.0.0.1:9/hook", enabled=False)),
        FakeAccounts(account("demo", "")),
    ],
    ids=["unknown", "disabled", "no-url"],
)
def test_event_without_a_destination_is_dropped(store: FakeAccounts, settings: Settings) -> None:
    # Given an unknown or disabled account, or one without a postback URL
    # When the event is handled, Then it returns quietly (nothing to retry)
    handle_event(bus_event(N003), store, settings)


def test_event_without_detail_is_malformed(settings: Settings) -> None:
    with pytest.raises(MalformedEventError):
        handle_event({"id": "x", "source": "mmsapi"}, FakeAccounts(), settings)


@pytest.fixture
def loopback_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The handler reads settings from the environment, like on Lambda.
    monkeypatch.setenv("MMS_ALLOW_LOOPBACK_MEDIA", "true")
    monkeypatch.setenv("MMS_POSTBACK_TIMEOUT", "2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_reports_only_the_failing_record(
    httpserver: Any, monkeypatch: pytest.MonkeyPatch, loopback_env: None
) -> None:
    # Given a batch of two postbacks: one to a receiver answering 200, one answering 500
    httpserver.expect_request("/ok").respond_with_data(b"OK")
    httpserver.expect_request("/broken").respond_with_data(b"down", status=500)
    good = load_event("postback/n003.json")["Records"][0]
    bad = load_event("postback/e002.json")["Records"][0]
    bad_event = json.loads(bad["body"])
    bad_event["detail"]["account_id"] = "broken"
    bad["body"] = json.dumps(bad_event)
    app = load_handler_module("postback")
    monkeypatch.setattr(
        app,
        "accounts",
        FakeAccounts(
            account("demo", httpserver.url_for("/ok")),
            account("broken", httpserver.url_for("/broken")),
        ),
    )
    # When the handler processes the batch
    result = app.handler({"Records": [good, bad]}, FakeLambdaContext())
    # Then only the failing record is reported, to be retried by SQS
    assert result == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    # And the good one was delivered with its event id and client reference
    delivered = [r for r, _ in httpserver.log if r.path == "/ok"]
    assert len(delivered) == 1
    assert delivered[0].headers["X-MMS-Postback-Id"] == json.loads(good["body"])["id"]
    root = etree.fromstring(delivered[0].get_data())
    assert root.findtext("client-reference") == "order-77"
