"""Shortcode -> account: the lookup that routes an MO (a phone's reply) to its account.

One item per shortcode, `shortcode:<code>` -> account id, in the account lookup table
(the API keys table: a key's item is its sha256 hex, which never holds a ':'). The
items are written in the same TransactWriteItems as the account that gains the
shortcode (store/accounts.py), and read with a consistent GetItem: a shortcode routes
at once (a GSI over the accounts' shortcodes would be eventually consistent on AWS).

The account decides: the lookup names the account that was given the code last, and
counts only while that account still holds it. Items are never deleted (a removal
would need a condition that could cancel the account's own write): a removed code's
item names an account that no longer holds it, which routes nothing.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from mmsapi.models import Account
from mmsapi.store import dynamo

PREFIX: Final = "shortcode:"


class Accounts(Protocol):
    """What the lookup needs of the accounts store (AccountStore fits)."""

    keys_table: str

    def get(self, account_id: str) -> Account | None: ...


def lookup_key(code: str) -> dict[str, Any]:
    return {"key_hash": {"S": PREFIX + code}}


def lookup_puts(
    table: str, account: Account, codes: set[str] | None = None
) -> list[dict[str, Any]]:
    """The TransactWriteItems parts that point the account's shortcodes (or `codes` of
    them) at it: unconditional, the account's own write decides."""
    wanted = [s.code for s in account.shortcodes if codes is None or s.code in codes]
    return [
        {
            "Put": {
                "TableName": table,
                "Item": {**lookup_key(code), "account_id": {"S": account.account_id}},
            }
        }
        for code in dict.fromkeys(wanted)
    ]


def gained(before: Account, after: Account) -> set[str]:
    """The shortcodes an account change gives the account."""
    return {s.code for s in after.shortcodes} - {s.code for s in before.shortcodes}


def account_by_shortcode(accounts: Accounts, code: str) -> Account | None:
    """The enabled account that holds this shortcode now (two consistent reads), or None."""
    if not code.isascii() or not code.isdigit() or len(code) > 15:
        return None
    found = dynamo.get_item(accounts.keys_table, lookup_key(code), what="shortcode")
    if found is None:
        return None
    account = accounts.get(found["account_id"]["S"])
    if account is None or not account.enabled:
        return None
    return account if code in {s.code for s in account.shortcodes} else None
