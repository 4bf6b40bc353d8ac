"""No read-after-write through a GSI: delivery reports and API keys are found with
consistent GetItems on lookup items written with the send or the account.

moto's GSIs are never behind; AWS's are eventually consistent. Here every Query or
Scan on an index answers as an index that has not caught up yet (no items), and is
recorded: the paths under test must neither need nor issue one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pytest_httpserver import HTTPServer

from local.aws_gate import AwsGate
from local.stack import Stack
from mmsapi.errors import DomainError
from mmsapi.models import SendStatus
from mmsapi.services.accounts import create_account, rotate_key
from mmsapi.services.deliver import deliver
from mmsapi.services.report import mm7_report, sms_report
from mmsapi.store import aws
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.conftest import DELIVERED_TO, REFUSED, Carrier
from tests.integration.helpers import answer, postback_events
from tests.integration.test_deliver import send, template

# Every index of this module lags an hour behind the writes: as AWS's GSIs may,
# right after a write, an index read finds nothing written during the test.
pytestmark = pytest.mark.gsi_lag(3600)


@dataclass
class LaggingIndexes:
    """The index reads the gate saw ("Table/index/Index" of each)."""

    gate: AwsGate

    @property
    def queried(self) -> list[str]:
        return [
            resource.split(":table/", 1)[1]
            for call in self.gate.calls
            if call.service == "dynamodb" and call.function != "harness"
            for resource in call.resources
            if "/index/" in resource
        ]


@pytest.fixture
def lagging(iam_gate: AwsGate) -> LaggingIndexes:
    return LaggingIndexes(iam_gate)


def test_the_lagging_index_stand_in_does_lag(client: Client, lagging: LaggingIndexes) -> None:
    # Given the templates listing, which reads the by-account index (a list, allowed)
    answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>n</name>"
            "<message-subject>s</message-subject><slide><message-text>t</message-text></slide>"
            "</request>"
        )
    )
    # When it is listed right after the save
    listing = client.post(
        f"<request><action>getMMSTemplates</action><api-key>{client.api_key}</api-key></request>"
    )
    # Then the index read was seen, and answered as not caught up yet (the stand-in works)
    assert any(q.endswith("/by-account") for q in lagging.queried)
    assert b"<mms-id>" not in listing


def test_a_report_right_after_the_submit_gives_n102(
    client: Client,
    stack: Stack,
    httpserver: HTTPServer,
    carrier: Carrier,
    lagging: LaggingIndexes,
) -> None:
    # Given a send the carrier takes
    send_id = send(client, template(client, httpserver), DELIVERED_TO)
    postback_events(stack)
    assert deliver(client.ctx, send_id) == "sent as MMS"
    # When its delivery report arrives at once (indexes not caught up yet)
    carrier.wait_reports(1)
    _, body, content_type = carrier.reports[0]
    mm7_report(client.ctx, body, content_type)
    # Then the send is found: N102, delivered, and no index was read on the way
    assert [e["detail"]["code"] for e in postback_events(stack)] == ["N101", "N102"]
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert stored.status is SendStatus.DELIVERED
    assert lagging.queried == []


def test_a_fallback_sms_receipt_right_after_the_send_gives_n202(
    client: Client,
    stack: Stack,
    httpserver: HTTPServer,
    carrier: Carrier,
    lagging: LaggingIndexes,
) -> None:
    # Given a send that went as fallback SMS
    send_id = send(client, template(client, httpserver), REFUSED)
    postback_events(stack)
    assert deliver(client.ctx, send_id) == "sent as SMS"
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    # When the gateway's receipt arrives at once
    assert sms_report(client.ctx, stored.carrier_message_id, delivered=True)
    # Then N202, with no index read
    assert [e["detail"]["code"] for e in postback_events(stack)] == ["N101", "N202"]
    assert lagging.queried == []


def test_an_id_the_send_no_longer_has_is_unknown(
    client: Client, stack: Stack, httpserver: HTTPServer, carrier: Carrier
) -> None:
    # Given a delivered send whose lookup item stays (as a DDM's id does after the MMS)
    send_id = send(client, template(client, httpserver), DELIVERED_TO)
    deliver(client.ctx, send_id)
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    old_id = stored.carrier_message_id
    stored.carrier_message_id = "mm7-another"
    client.ctx.sends.save(stored, carrier_message=True)
    # When a report names the old id, Then it matches no send; the new id does
    assert client.ctx.sends.by_carrier_message_id(old_id) is None
    found = client.ctx.sends.by_carrier_message_id("mm7-another")
    assert found is not None
    assert found.send_id == send_id


def _auth(client: Client, key: str) -> str:
    """E104 for a refused key; past authentication, deleting a missing MMS is E241."""
    got = answer(
        client.post(
            f"<request><action>deleteMMSID</action><api-key>{key}</api-key>"
            "<mms-id>999999</mms-id></request>"
        )
    )
    return got.get("error-code") or got["status"]


def test_a_new_key_works_at_once_and_a_rotated_one_stops_at_once(
    client: Client, lagging: LaggingIndexes
) -> None:
    # Given an account created this instant (indexes not caught up)
    account, key = create_account(client.ctx.accounts, "fresh", service_id="1")
    # When its key is used at once, Then it works
    assert _auth(client, key) == "E241"
    # When the key is rotated
    rotated = rotate_key(client.ctx.accounts, account.account_id)
    assert rotated is not None
    new_key = rotated[1]
    # Then the new key works at once and the old one is refused at once
    assert _auth(client, new_key) == "E241"
    assert _auth(client, key) == "E104"
    # And no key was looked up through an index
    assert lagging.queried == []


def test_a_rotated_key_leaves_no_lookup_item_behind(client: Client, stack: Stack) -> None:
    # Given an account whose key was rotated
    account, _ = create_account(client.ctx.accounts, "rotating", service_id="1")
    rotated = rotate_key(client.ctx.accounts, account.account_id)
    assert rotated is not None
    # Then the keys table holds the new key's item only
    items = aws.dynamodb().scan(TableName=stack.physical["ApiKeysTable"])["Items"]
    mine = [i for i in items if i["account_id"]["S"] == account.account_id]
    assert [i["key_hash"]["S"] for i in mine] == [rotated[0].key_hash]


def test_a_key_already_in_use_cannot_make_a_second_account(client: Client) -> None:
    # Given the demo account's key, When another account is created with it
    with pytest.raises(DomainError, match="exists already"):
        create_account(client.ctx.accounts, "copy", api_key=client.api_key)
    # Then nothing half-written stays: the key still opens the demo account only
    assert [a.name for a in client.ctx.accounts.all()] == ["demo"]
    assert _auth(client, client.api_key) == "E241"


def test_a_ddm_report_right_after_its_submit_moves_the_send_on(
    client: Client,
    stack: Stack,
    httpserver: HTTPServer,
    carrier: Carrier,
    lagging: LaggingIndexes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a send whose Device Discovery Message is being sent
    got = answer(
        client.post(
            f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
            f"<mms-id>{template(client, httpserver)}</mms-id><to>{DELIVERED_TO}</to>"
            "<from>28444</from><service-id>12345</service-id><fallback-sms-text>x"
            "</fallback-sms-text><ddm-message-text>free</ddm-message-text></request>"
        )
    )
    send_id = parse_tracking_id(got["tracking-id"]) or 0
    assert deliver(client.ctx, send_id) == "discovering the handset"
    # When its report arrives at once
    carrier.wait_reports(1)
    _, body, content_type = carrier.reports[0]
    mm7_report(client.ctx, body, content_type)
    # Then the send is found: it moves on, told the learnt handset
    stored = client.ctx.sends.get(send_id)
    assert stored is not None
    assert (stored.status, stored.discovered) == (SendStatus.QUEUED, True)
    n502 = [e["detail"] for e in postback_events(stack) if e["detail"]["code"] == "N502"]
    assert [e["fields"]["handset"] for e in n502] == ["iPhone"]
    assert lagging.queried == []
