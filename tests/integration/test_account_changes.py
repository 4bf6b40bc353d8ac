"""Account changes count within 1 second in every warm function, and admin input is
validated before it is stored.

The admin CLI runs in another process than the functions: here it writes through its
own AccountStore, while the API requests go through one warm Context that served a
request before the change (the same process objects a warm Lambda keeps). That context
trusts what it read for a key for 0.5 s (store/accounts.KEY_CACHE_SECONDS): each
change is followed by account_change_counted, then the next request must see it.
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from local.aws_gate import acting_as
from local.stack import Stack
from mmsapi import observability
from mmsapi.admin import cli as admin
from mmsapi.admin import target
from mmsapi.services.postback import handle_event, sign
from mmsapi.settings import get_settings
from mmsapi.store.accounts import AccountStore
from tests.conftest import Client
from tests.integration.helpers import account_change_counted, answer

LIST = "<request><action>getMMSTemplates</action><api-key>{key}</api-key></request>"


@pytest.fixture
def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given mmsapi-admin pointed at the test stack's tables (as --stack would)."""
    monkeypatch.setattr(target, "connect", lambda *_: target.Target("test", get_settings()))


def run_admin(*argv: str) -> None:
    admin.main(["--stack-name", "test", *argv])
    account_change_counted()


def listed(client: Client, key: str | None = None) -> dict[str, str]:
    """getMMSTemplates through the warm API context, as the API function would."""
    with acting_as("ApiFunction"):
        return answer(client.post(LIST.format(key=key or client.api_key)))


def test_disabling_refuses_the_next_request(cli: None, client: Client) -> None:
    # Given a warm API function that has just served the account
    assert listed(client)["status"] == "Success"
    # When the admin disables the account (another process)
    run_admin("disable", client.account.account_id)
    # Then the very next request on the same warm context is refused
    assert listed(client)["error-code"] == "E105"
    # And enabling it again works as quickly
    run_admin("enable", client.account.account_id)
    assert listed(client)["status"] == "Success"


def test_rotated_key_is_refused_at_once_and_the_new_one_works(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a warm API function that has just served the old key
    assert listed(client)["status"] == "Success"
    # When the admin rotates the key
    run_admin("rotate-key", client.account.account_id)
    new_key = capsys.readouterr().out.split("api-key:")[1].split()[0]
    # Then the old key is refused at once, and the new one works at once
    assert listed(client)["error-code"] == "E104"
    assert listed(client, new_key)["status"] == "Success"


def test_allow_list_change_counts_from_the_next_request(cli: None, client: Client) -> None:
    # Given a warm API function that has just served the caller's address
    assert listed(client)["status"] == "Success"
    # When the admin allows another network only
    run_admin("set-allow-ip", client.account.account_id, "--allow-ip", "198.51.100.0/24")
    # Then the caller is refused at once
    assert listed(client)["error-code"] == "E112"
    # And allowing the caller's network lets it in at once
    run_admin("set-allow-ip", client.account.account_id, "--allow-ip", "203.0.113.0/24")
    assert listed(client)["status"] == "Success"


def test_changed_postback_url_and_secret_are_used_at_once(
    cli: None, client: Client, httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a warm postback function's store that has delivered one postback
    httpserver.expect_request("/old").respond_with_data(b"OK")
    httpserver.expect_request("/new").respond_with_data(b"OK")
    warm = AccountStore()
    account_id = client.account.account_id
    run_admin("set-postback", account_id, "--url", httpserver.url_for("/old"))
    event: dict[str, Any] = {
        "id": "evt-1",
        "detail": {"code": "N003", "account_id": account_id, "fields": {"mms-id": "7"}},
    }
    with acting_as("PostbackFunction"):
        handle_event(event, warm)
    # When the admin changes the URL and the secret
    capsys.readouterr()
    run_admin("set-postback", account_id, "--url", httpserver.url_for("/new"), "--new-secret")
    secret = capsys.readouterr().out.split("postback-secret:")[1].split()[0]
    with acting_as("PostbackFunction"):
        handle_event({**event, "id": "evt-2"}, warm)
    # Then the next postback goes to the new URL, signed with the new secret
    request, _ = httpserver.log[-1]
    assert request.path == "/new"
    assert request.headers["X-MMS-Signature"] == sign(request.get_data(), secret)


# ---- admin input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--allow-ip", "10.0.0.0/33", "allow-ip"),
        ("--allow-ip", "not-an-ip", "allow-ip"),
        ("--shortcode", "28a44", "shortcode"),
        ("--shortcode", "28444:XX", "country"),
        ("--shortcode", "28444:US:maybe", "default"),
        ("--service-id", "12 345", "service-id"),
        ("--postback-url", "ftp://example.com/hook", "http"),
        ("--postback-url", "https://user:pw@example.com/hook", "credentials"),
        ("--postback-url", "https:///hook", "host"),
        ("--actions", "saveMMS,dropTables", "actions"),
    ],
)
def test_invalid_admin_input_is_refused_and_nothing_stored(
    cli: None, stack: Stack, capsys: pytest.CaptureFixture[str], option: str, value: str, says: str
) -> None:
    # When an account is created with one invalid input
    with pytest.raises(SystemExit) as exited:
        run_admin("create-account", "--name", "acme", option, value)
    # Then the CLI exits with status 2 and says what is wrong
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
    # And nothing was stored
    assert AccountStore().all() == []


def test_invalid_allow_list_change_is_refused_and_the_old_one_kept(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_admin("set-allow-ip", client.account.account_id, "--allow-ip", "300.1.2.3")
    assert exited.value.code == 2
    assert "300.1.2.3" in capsys.readouterr().err
    stored = AccountStore().get(client.account.account_id)
    assert stored is not None
    assert stored.ip_allowlist == []


def test_valid_allow_list_is_stored_normalised(
    cli: None, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    run_admin(
        "create-account",
        "--name",
        "acme",
        "--allow-ip",
        "203.0.113.7",
        "--allow-ip",
        "2001:db8::1/64",
    )
    [account] = AccountStore().all()
    assert account.ip_allowlist == ["203.0.113.7/32", "2001:db8::/64"]


def test_an_invalid_stored_allow_list_entry_matches_nothing(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(observability.logger, "warning", lambda msg, **_: warnings.append(msg))
    # Given an account whose allow-list was stored before input was validated
    store = AccountStore()
    account = store.get(client.account.account_id)
    assert account is not None
    account.ip_allowlist = ["not/a/cidr", "203.0.113.0/24"]
    store.put(account)
    account_change_counted()
    # When a request comes from an allowed address, Then the valid entry lets it in
    assert listed(client)["status"] == "Success"
    # And from another address, it is refused as not allowed (E112, not E503)
    client.source_ip = "198.51.100.1"
    assert listed(client)["error-code"] == "E112"
    # And with only the invalid entry left, every address is refused (fails closed)
    account.ip_allowlist = ["not/a/cidr"]
    store.put(account)
    account_change_counted()
    client.source_ip = "203.0.113.10"
    assert listed(client)["error-code"] == "E112"
    assert listed(client)["error-code"] == "E112"
    # And the operator is told, once per warm function
    assert warnings == ["invalid ip_allowlist entry ignored"]
