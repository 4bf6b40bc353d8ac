"""Shortcode -> account: the lookup that routes an MO (a phone's reply) to its account.

One item per shortcode, `shortcode:<code>` -> account id, in the account lookup table
(the API keys table: a key's item is its sha256 hex, which never holds a ':'). Each
item is written in the same TransactWriteItems as the account write that gains or
loses the code (store/accounts.py), and read with a consistent GetItem: a shortcode
routes at once (a GSI over the accounts' shortcodes would be eventually consistent).

A shortcode belongs to at most one account. The account write that gains a code puts
its item on condition that it names no account or this one, so of two admins giving
one code to two accounts at once only one wins; the other is refused with
ShortcodeHeldError, nothing written. The write that loses a code deletes its item on
condition that it names no account or this one. An item naming an account that no
longer holds the code (left by a stack older than this rule) is taken over, on
condition that it still names that account and that account is unchanged since read.
An MO counts the item only while the account it names still holds the code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Protocol

from mmsapi.errors import DomainError
from mmsapi.models import Account
from mmsapi.store import dynamo

PREFIX: Final = "shortcode:"
# Who may write a code's item: nobody holds it, or this account does.
_FREE_OR_MINE: Final = "attribute_not_exists(account_id) OR account_id = :me"

Part = tuple[str, dict[str, Any]]  # (the shortcode, a TransactWriteItems part)


class ShortcodeHeldError(DomainError):
    """The shortcode is another account's; nothing was written."""

    def __init__(self, code: str, holder: Account) -> None:
        self.code = code
        self.holder = holder
        super().__init__(
            f"shortcode {code} is held by account {holder.account_id} ({holder.name}): "
            f"a shortcode belongs to one account; remove it there first "
            f"(update {holder.account_id} --remove-shortcode {code})"
        )


class Accounts(Protocol):
    """What the lookup needs of the accounts store (AccountStore fits)."""

    table: str
    keys_table: str

    def get(self, account_id: str) -> Account | None: ...

    def versioned(self, account_id: str) -> tuple[Account, int] | None: ...


def lookup_key(code: str) -> dict[str, Any]:
    return {"key_hash": {"S": PREFIX + code}}


def codes_of(account: Account) -> set[str]:
    return {s.code for s in account.shortcodes}


def gained(before: Account, after: Account) -> set[str]:
    """The shortcodes an account change gives the account (swap the two: it loses)."""
    return codes_of(after) - codes_of(before)


def holder_of(accounts: Accounts, code: str) -> tuple[str | None, tuple[Account, int] | None]:
    """The account id the code's item names (None: no item), and that account as stored
    now with its version (None: there is no such account)."""
    found = dynamo.get_item(accounts.keys_table, lookup_key(code), what="shortcode")
    if found is None:
        return None, None
    named = found["account_id"]["S"]
    return named, accounts.versioned(named)


class Routing:
    """The lookup parts of one account's writes, and what refused attempts taught."""

    def __init__(self, accounts: Accounts, account_id: str) -> None:
        self.accounts = accounts
        self.account_id = account_id
        self._stale: dict[str, str] = {}  # code -> the account its item names, not holding it
        self._versions: dict[str, int | None] = {}  # that account's version (None: gone)
        self._foreign: set[str] = set()  # lost codes whose item names another account
        self._gaining: set[str] = set()

    def parts(self, gains: Iterable[str], losses: Iterable[str]) -> list[Part]:
        """Put the item of each gained code, delete that of each lost one."""
        self._gaining = set(gains)
        me = {":me": {"S": self.account_id}}
        table = self.accounts.keys_table
        item = {"account_id": {"S": self.account_id}}
        parts: list[Part] = []
        checked: set[str] = set()
        for code in sorted(self._gaining):
            put: dict[str, Any] = {"TableName": table, "Item": {**lookup_key(code), **item}}
            stale = self._stale.get(code)
            if stale is None:
                parts.append((code, {"Put": {**put, **_condition(_FREE_OR_MINE, me)}}))
                continue
            stale_value = {":stale": {"S": stale}}
            parts.append((code, {"Put": {**put, **_condition("account_id = :stale", stale_value)}}))
            if stale not in checked:  # one part per item in a transaction
                checked.add(stale)
                parts.append((code, self._still_without(stale)))
        for code in sorted(set(losses) - self._foreign):
            delete = {"TableName": table, "Key": lookup_key(code), **_condition(_FREE_OR_MINE, me)}
            parts.append((code, {"Delete": delete}))
        return parts

    def _still_without(self, account_id: str) -> dict[str, Any]:
        """The stale holder as read: unchanged, or still missing (it did not get the code back)."""
        version = self._versions[account_id]
        check: dict[str, Any] = {
            "TableName": self.accounts.table,
            "Key": {"account_id": {"S": account_id}},
        }
        if version is None:
            return {"ConditionCheck": {**check, **_condition("attribute_not_exists(account_id)")}}
        names = {"ExpressionAttributeNames": {"#v": "version"}}
        if version == 0:
            return {"ConditionCheck": {**check, **_condition("attribute_not_exists(#v)"), **names}}
        value = {":v": {"N": str(version)}}
        return {"ConditionCheck": {**check, **_condition("#v = :v", value), **names}}

    def resolve(self, code: str) -> None:
        """After the part of `code` was refused: read its item and the account it names.
        ShortcodeHeldError if that account holds the code; else the next parts take the
        item over (a gained code) or leave it alone (a lost code)."""
        named, holder = holder_of(self.accounts, code)
        if named is None or named == self.account_id:
            self._stale.pop(code, None)  # changed since: the plain condition holds again
            return
        if code not in self._gaining:
            self._foreign.add(code)  # another account's item: not this write's to delete
            return
        if holder is not None and code in codes_of(holder[0]):
            raise ShortcodeHeldError(code, holder[0])
        self._stale[code] = named
        self._versions[named] = holder[1] if holder is not None else None


def _condition(expression: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    extra = {"ExpressionAttributeValues": values} if values else {}
    return {"ConditionExpression": expression, **extra}


def account_by_shortcode(accounts: Accounts, code: str) -> Account | None:
    """The account that holds this shortcode now (two consistent reads), or None.

    Enabled or not: a phone's STOP to a disabled account's code still counts (the
    callers tell the account of an MO only while it is enabled)."""
    if not code.isascii() or not code.isdigit() or len(code) > 15:
        return None
    found = dynamo.get_item(accounts.keys_table, lookup_key(code), what="shortcode")
    if found is None:
        return None
    account = accounts.get(found["account_id"]["S"])
    if account is None:
        return None
    return account if code in codes_of(account) else None
