"""A shortcode belongs to at most one account (docs/accounts.md#shortcodes).

The MO of a shortcode goes to the account its lookup item names (store/shortcodes.py):
giving a held code to a second account is refused, naming the holder, before anything
is written; removing a code deletes its item; an item left naming an account that no
longer holds the code is taken over; backfill-lookups reports codes held twice.
"""

from __future__ import annotations

import pytest

from local.stack import Stack
from mmsapi import records
from mmsapi.admin import cli as admin
from mmsapi.admin import target
from mmsapi.admin.changes import parse_change
from mmsapi.models import Account, Shortcode
from mmsapi.services.accounts import InvalidInputError, create_account
from mmsapi.settings import get_settings
from mmsapi.store import aws, shortcodes
from mmsapi.store.accounts import AccountStore, hash_key
from mmsapi.store.shortcodes import ShortcodeHeldError, account_by_shortcode, lookup_key
from tests.conftest import Client


@pytest.fixture
def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given mmsapi-admin pointed at the test stack's tables (as --stack would)."""
    monkeypatch.setattr(target, "connect", lambda *_: target.Target("test", get_settings()))


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        admin.main(list(argv))
    code = exited.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


def routed(store: AccountStore, code: str) -> str | None:
    """The account an MO to `code` goes to now (services/inbound.py's lookup)."""
    account = account_by_shortcode(store, code)
    return account.account_id if account else None


def named(store: AccountStore, code: str) -> str | None:
    """The account the code's lookup item names, whether or not it holds the code."""
    item = aws.dynamodb().get_item(
        TableName=store.keys_table, Key=lookup_key(code), ConsistentRead=True
    )
    return item["Item"]["account_id"]["S"] if "Item" in item else None


def codes(store: AccountStore, account_id: str) -> set[str]:
    account = store.get(account_id)
    assert account is not None
    return {s.code for s in account.shortcodes}


def legacy_account(store: AccountStore, account_id: str, *held: str) -> Account:
    """An account written as a stack older than the rule wrote it: no lookup items."""
    account = Account(
        account_id=account_id,
        name=account_id,
        key_hash=hash_key(account_id + "-key-" + "x" * 24),
        shortcodes=[Shortcode(code=code) for code in held],
    )
    aws.dynamodb().put_item(
        TableName=store.table,
        Item={
            "account_id": {"S": account.account_id},
            "key_hash": {"S": account.key_hash},
            "doc": {"S": records.to_json(account)},
        },
    )
    return account


def point(store: AccountStore, code: str, account_id: str) -> None:
    """A lookup item as an older stack left it."""
    item = {**lookup_key(code), "account_id": {"S": account_id}}
    aws.dynamodb().put_item(TableName=store.keys_table, Item=item)


def test_creating_an_account_with_a_held_shortcode_is_refused_naming_the_holder(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the demo account, which holds 28444
    store = AccountStore()
    before = [a.account_id for a in store.all()]
    # When an admin creates an account with 28444
    status, err = refused(capsys, "create-account", "--name", "acme", "--shortcode", "28444")
    # Then it is refused as an invalid input, naming the holder, and nothing is stored
    assert status == 2
    assert f"shortcode 28444 is held by account {client.account.account_id} (demo)" in err
    assert [a.account_id for a in store.all()] == before
    assert routed(store, "28444") == client.account.account_id


def test_giving_a_held_shortcode_to_another_account_is_refused_and_mo_stays(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the demo account with 28444, and acme with 28555
    store = AccountStore()
    acme, _ = create_account(store, "acme", shortcodes=[Shortcode(code="28555")])
    # When an admin gives acme the demo account's 28444 (with another change)
    status, err = refused(
        capsys, "update", acme.account_id, "--add-shortcode", "28444", "--name", "acme2"
    )
    # Then it is refused, naming the holder; acme is unchanged and the MO stays with demo
    assert status == 2
    assert f"held by account {client.account.account_id} (demo)" in err
    assert "--remove-shortcode 28444" in err
    stored = store.get(acme.account_id)
    assert stored is not None
    assert (stored.name, codes(store, acme.account_id)) == ("acme", {"28555"})
    assert routed(store, "28444") == client.account.account_id
    # And acme "removing" it changes nothing either: it is not acme's
    status, err = refused(capsys, "update", acme.account_id, "--remove-shortcode", "28444")
    assert (status, routed(store, "28444")) == (2, client.account.account_id)


def test_a_shortcode_given_twice_at_creation_is_refused(client: Client) -> None:
    with pytest.raises(InvalidInputError, match="28666: given more than once"):
        create_account(
            client.ctx.accounts,
            "twice",
            shortcodes=[Shortcode(code="28666"), Shortcode(code="28666", country="CA")],
        )
    assert named(client.ctx.accounts, "28666") is None


def test_a_removed_shortcode_is_free_for_another_account(client: Client) -> None:
    # Given the demo account's 28444 removed
    store = AccountStore()
    demo = client.account.account_id
    store.change(demo, parse_change({"remove_shortcode": ["28444"]}))
    # Then its lookup item is gone: the MO to 28444 finds no account
    assert (named(store, "28444"), routed(store, "28444")) == (None, None)
    # When another account is given 28444, Then its MO goes there
    acme, _ = create_account(store, "acme")
    store.change(acme.account_id, parse_change({"add_shortcode": ["28444"]}))
    assert routed(store, "28444") == acme.account_id
    # And the demo account cannot take it back
    with pytest.raises(ShortcodeHeldError, match=f"held by account {acme.account_id}"):
        store.change(demo, parse_change({"add_shortcode": ["28444"]}))
    assert codes(store, demo) == set()


def test_moving_a_code_between_countries_keeps_its_lookup(client: Client) -> None:
    # `--remove-shortcode 28444 --add-shortcode 28444:CA` in one update: it stays held
    store = AccountStore()
    demo = client.account.account_id
    store.change(demo, parse_change({"remove_shortcode": ["28444"], "add_shortcode": ["28444:CA"]}))
    assert routed(store, "28444") == demo
    account = store.get(demo)
    assert account is not None
    assert [(s.code, s.country) for s in account.shortcodes] == [("28444", "CA")]


def test_of_two_admins_racing_for_a_code_one_wins(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given acme and beta, and an admin giving 28777 to beta while another gives it to acme
    store = AccountStore()
    acme, _ = create_account(store, "acme")
    beta, _ = create_account(store, "beta")
    racing = AccountStore()
    raced: list[bool] = []

    def give(account: Account) -> Account:
        if not raced:  # between this admin's read and its write, the other one's lands
            raced.append(True)
            racing.change(beta.account_id, parse_change({"add_shortcode": ["28777"]}))
        return parse_change({"add_shortcode": ["28777"]})(account)

    # When acme's change is written, Then it is refused, naming beta; beta keeps the code
    with pytest.raises(ShortcodeHeldError, match=f"held by account {beta.account_id} .beta."):
        store.change(acme.account_id, give)
    assert (codes(store, acme.account_id), codes(store, beta.account_id)) == (set(), {"28777"})
    assert routed(store, "28777") == beta.account_id


def test_a_lookup_left_naming_a_former_holder_is_taken_over(client: Client) -> None:
    # Given 28888's lookup left naming the demo account, which does not hold it (an older
    # stack), and 28999's naming an account that no longer exists
    store = AccountStore()
    point(store, "28888", client.account.account_id)
    point(store, "28999", "gone00000001")
    assert routed(store, "28888") is None
    # When an account is created with 28888, and another is given 28999
    acme, _ = create_account(store, "acme", shortcodes=[Shortcode(code="28888")])
    beta, _ = create_account(store, "beta")
    store.change(beta.account_id, parse_change({"add_shortcode": ["28999"]}))
    # Then each takes its code over
    assert routed(store, "28888") == acme.account_id
    assert routed(store, "28999") == beta.account_id


def test_a_former_holder_taking_its_code_back_meanwhile_wins(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 28888's lookup left naming the demo account, which does not hold it
    store = AccountStore()
    demo = client.account.account_id
    point(store, "28888", demo)
    acme, _ = create_account(store, "acme")
    resolve = shortcodes.Routing.resolve
    calls: list[str] = []

    def resolve_then_race(routing: shortcodes.Routing, code: str) -> None:
        resolve(routing, code)
        if not calls:  # acme found the item stale; now the demo account gets 28888 back
            calls.append(code)
            AccountStore().change(demo, parse_change({"add_shortcode": ["28888"]}))

    monkeypatch.setattr(shortcodes.Routing, "resolve", resolve_then_race)
    # When acme is given 28888, Then its take-over fails on the demo account's change
    with pytest.raises(ShortcodeHeldError, match=f"held by account {demo}"):
        store.change(acme.account_id, parse_change({"add_shortcode": ["28888"]}))
    assert calls == ["28888"]
    assert (codes(store, acme.account_id), routed(store, "28888")) == (set(), demo)


def test_removing_a_code_another_account_routes_leaves_that_lookup(
    client: Client,
) -> None:
    # Given 28444 held by the demo account and, from an older stack, by old (no lookup)
    store = AccountStore()
    old = legacy_account(store, "old000000001", "28444", "28555")
    # When old loses 28444
    store.change(old.account_id, parse_change({"remove_shortcode": ["28444"]}))
    # Then the demo account keeps its MO
    assert codes(store, old.account_id) == {"28555"}
    assert routed(store, "28444") == client.account.account_id


def test_backfill_reports_codes_held_twice_instead_of_repointing_them(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given accounts of an older stack: one holding 28444 besides the demo account (its
    # lookup naming the demo account), one holding 28555 alone (no lookup item)
    store = AccountStore()
    demo = client.account.account_id
    late = legacy_account(store, "late00000001", "28444")
    alone = legacy_account(store, "alone0000001", "28555")
    # When backfill-lookups runs (twice: it is safe to repeat)
    capsys.readouterr()
    admin.main(["--stack-name", "test", "backfill-lookups"])
    admin.main(["--stack-name", "test", "backfill-lookups"])
    out = capsys.readouterr().out
    # Then 28444 is reported, and its MO still goes to the demo account
    assert out.count("shortcode 28444 is held by 2 accounts") == 2
    assert f"{demo} (demo), {late.account_id} ({late.account_id})" in out
    assert f"its MO goes to {demo}" in out
    assert routed(store, "28444") == demo
    # And the code held once gets its lookup item
    assert "1 shortcode lookup items written" in out
    assert routed(store, "28555") == alone.account_id
    # When the admin removes 28444 from the demo account and runs backfill again
    store.change(demo, parse_change({"remove_shortcode": ["28444"]}))
    assert routed(store, "28444") is None
    admin.main(["--stack-name", "test", "backfill-lookups"])
    # Then the remaining holder gets it
    assert "held by" not in capsys.readouterr().out
    assert routed(store, "28444") == late.account_id
