"""Without an MMSC (no MmscUrl), a send is refused at once with E619, and a send that
was already queued ends at once with E101: nothing waits minutes for retries."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from local.stack import Stack, load_template
from mmsapi.errors import CATALOGUE
from mmsapi.models import SendStatus
from mmsapi.services.deliver import deliver
from mmsapi.settings import get_settings
from mmsapi.store import aws
from tests.conftest import Client
from tests.integration.conftest import DELIVERED_TO
from tests.integration.helpers import answer, postback_events
from tests.integration.test_deliver import send, template


@pytest.fixture
def no_carrier(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a stack deployed without MmscUrl: the API is told so, Deliver has no URL."""
    monkeypatch.setenv("MMS_CARRIER_PROVISIONED", "false")
    monkeypatch.setenv("MMS_MM7_URL", "")
    get_settings.cache_clear()


def _items(stack: Stack, logical_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws.dynamodb().scan(TableName=stack.physical[logical_id])["Items"]
    return items


def _queued(stack: Stack) -> int:
    attributes = aws.sqs().get_queue_attributes(
        QueueUrl=stack.physical["SendQueue"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_send_saved_mms_is_refused_at_once_with_e619(
    client: Client, stack: Stack, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a saved MMS
    mms_id = template(client, httpserver)
    # When the stack has no MMSC and it is sent
    monkeypatch.setenv("MMS_CARRIER_PROVISIONED", "false")
    get_settings.cache_clear()
    got = answer(
        client.post(
            f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
            f"<mms-id>{mms_id}</mms-id><to>{DELIVERED_TO}</to><from>28444</from>"
            "<service-id>12345</service-id><fallback-sms-text>x</fallback-sms-text></request>"
        )
    )
    # Then E619 "Carrier not provisioned.", and nothing was recorded or queued
    assert got["status"] == "Failure"
    assert got["error-code"] == "E619"
    assert got["error-info"] == CATALOGUE["E619"]
    assert _items(stack, "SendsTable") == []
    assert _queued(stack) == 0


def test_send_mms_is_refused_before_anything_is_fetched(
    client: Client, stack: Stack, httpserver: HTTPServer, no_carrier: None
) -> None:
    # Given media a sendMMS names
    httpserver.expect_request("/p.jpg").respond_with_data(b"never fetched")
    # When it is sent on a stack without an MMSC
    got = answer(
        client.post(
            f"<request><action>sendMMS</action><api-key>{client.api_key}</api-key><name>n</name>"
            "<message-subject>s</message-subject>"
            f"<slide><image><url>{httpserver.url_for('/p.jpg')}</url></image></slide>"
            f"<to>{DELIVERED_TO}</to><from>28444</from><service-id>12345</service-id>"
            "<fallback-sms-text>x</fallback-sms-text></request>"
        )
    )
    # Then E619 at once: no fetch, no template, no send
    assert got["error-code"] == "E619"
    assert httpserver.log == []
    assert _items(stack, "TemplatesTable") == []
    assert _items(stack, "SendsTable") == []


def test_a_queued_send_ends_at_once_with_e101_when_no_mmsc_is_configured(
    client: Client, stack: Stack, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a send queued while the stack had an MMSC
    send_id = send(client, template(client, httpserver), DELIVERED_TO)
    postback_events(stack)
    # When it is delivered after the MMSC URL was removed
    monkeypatch.setenv("MMS_MM7_URL", "")
    get_settings.cache_clear()
    outcome = deliver(client.ctx, send_id)
    # Then it fails now (no RetryLater for the queue), told as E101 with the reason
    assert outcome == "failed: carrier not provisioned"
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.FAILED
    [event] = postback_events(stack)
    assert event["detail"]["code"] == "E101"
    assert event["detail"]["fields"]["status-details"] == CATALOGUE["E619"]
    # And a redelivered queue message does nothing more
    assert deliver(client.ctx, send_id) == "not queued"
    assert postback_events(stack) == []


def test_only_the_api_function_is_told_and_only_whether_an_mmsc_exists() -> None:
    # Given the template
    template_ = load_template()
    resources = template_["Resources"]
    api_env = resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
    # Then the API function gets a boolean from the MmscUrl condition, never the MMSC secrets
    assert api_env["MMS_CARRIER_PROVISIONED"] == {"Fn::If": ["HasMmscUrl", "true", "false"]}
    assert template_["Conditions"]["HasMmscUrl"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MmscUrl"}, ""]}]
    }
    assert not any(name.startswith("MMS_MM7_") for name in api_env)
    globals_env = template_["Globals"]["Function"]["Environment"]["Variables"]
    assert not any(name.startswith("MMS_MM7_") for name in globals_env)
    assert "MMS_CARRIER_PROVISIONED" not in globals_env


def test_lookup_tables_are_named_only_to_the_functions_that_use_them() -> None:
    # Given the template
    template_ = load_template()
    resources = template_["Resources"]
    users = {
        name: set(resource["Properties"].get("Environment", {}).get("Variables", {}))
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    # Then each lookup table's name goes to its users only, never through Globals
    with_carrier = {n for n, env in users.items() if "MMS_CARRIER_MESSAGES_TABLE" in env}
    with_keys = {n for n, env in users.items() if "MMS_API_KEYS_TABLE" in env}
    assert with_carrier == {"DeliverFunction", "ReportFunction"}
    # (ReportFunction: an MMS MO finds its account by shortcode, docs/inbound.md)
    assert with_keys == {"ApiFunction", "ReportFunction"}
    globals_env = template_["Globals"]["Function"]["Environment"]["Variables"]
    assert {"MMS_CARRIER_MESSAGES_TABLE", "MMS_API_KEYS_TABLE"}.isdisjoint(globals_env)
    # And no GSI is left but the templates listing's and the sweeper's deadlines (a list
    # and a periodic scan that re-reads each record consistently: no read-after-write)
    indexes = {
        (name, index["IndexName"])
        for name, resource in resources.items()
        for index in resource.get("Properties", {}).get("GlobalSecondaryIndexes", [])
    }
    assert indexes == {
        ("TemplatesTable", "by-account"),
        ("TemplatesTable", "by-settle-by"),
        ("SendsTable", "by-settle-by"),
    }
