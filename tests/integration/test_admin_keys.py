"""mmsapi-admin writes API keys with their accounts; backfill-lookups upgrades old stacks."""

from __future__ import annotations

import re

import pytest

from local.stack import Stack
from mmsapi import records
from mmsapi.admin import cli as admin
from mmsapi.admin import target
from mmsapi.models import Account, Send, SendStatus
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.accounts import AccountStore, hash_key
from tests.conftest import Client


@pytest.fixture
def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given mmsapi-admin pointed at the test stack's tables (as --stack would)."""
    monkeypatch.setattr(target, "connect", lambda *_: target.Target("test", get_settings()))


def test_created_then_rotated_key_from_the_cli(
    cli: None, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When an account is created, then its key rotated, with the CLI
    admin.main(["--stack-name", "test", "create-account", "--name", "acme"])
    created = capsys.readouterr().out
    account_id = re.search(r"account-id:\s+(\S+)", created)
    first_key = re.search(r"api-key:\s+(\S+)", created)
    assert account_id
    assert first_key
    admin.main(["--stack-name", "test", "rotate-key", account_id[1]])
    second_key = re.search(r"api-key:\s+(\S+)", capsys.readouterr().out)
    assert second_key
    # Then the new key finds the account at once and the old one nothing
    store = AccountStore()
    found = store.by_api_key(second_key[1])
    assert found is not None
    assert found.account_id == account_id[1]
    assert store.by_api_key(first_key[1]) is None


def test_backfill_gives_accounts_and_sends_of_an_older_stack_their_lookup_items(
    cli: None, client: Client, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an account written as before the API keys table existed (no lookup item)
    old = Account(account_id="old0000000001", name="old", key_hash=hash_key("old-key-" + "x" * 24))
    aws.dynamodb().put_item(
        TableName=stack.physical["AccountsTable"],
        Item={
            "account_id": {"S": old.account_id},
            "key_hash": {"S": old.key_hash},
            "doc": {"S": records.to_json(old)},
        },
    )
    assert AccountStore().by_api_key("old-key-" + "x" * 24) is None
    # And a send awaiting its report, written without its lookup item; one long delivered
    waiting = _send(client, 1, SendStatus.SENT, "mm7-waiting")
    _send(client, 2, SendStatus.DELIVERED, "mm7-done")
    assert client.ctx.sends.by_carrier_message_id("mm7-waiting") is None
    # When backfill-lookups runs (twice: it is safe to repeat)
    admin.main(["--stack-name", "test", "backfill-lookups"])
    admin.main(["--stack-name", "test", "backfill-lookups"])
    # Then the old key works, and the demo account's too
    out = capsys.readouterr().out
    assert "2 API key lookup items written" in out
    assert "1 carrier message lookup items written" in out
    found = AccountStore().by_api_key("old-key-" + "x" * 24)
    assert found is not None
    assert found.account_id == old.account_id
    assert AccountStore().by_api_key(client.api_key) is not None
    # And the waiting send's report will find it
    found_send = client.ctx.sends.by_carrier_message_id("mm7-waiting")
    assert found_send is not None
    assert found_send.send_id == waiting.send_id


def _send(client: Client, send_id: int, status: SendStatus, carrier_id: str) -> Send:
    send = Send(
        send_id=send_id,
        account_id=client.account.account_id,
        mms_id=1,
        to="14044790000",
        sender="28444",
        requested_from="28444",
        service_id="12345",
        status=status,
        carrier_message_id=carrier_id,
    )
    client.ctx.sends.create(send)
    return send
