"""The accounts table, and the API keys table that finds an account by its key's hash.

Each key hash has its own item (key_hash -> account_id), written in one transaction
with the account and read with a consistent GetItem: a new key works at once, and a
rotated key stops working at once (a GSI, eventually consistent on AWS, could miss
the new key and still find the old one for a while).

A warm function keeps what it read for a key (the account, or that there is none) for
KEY_CACHE_SECONDS: a burst of requests reads both items once, and disabling an account,
rotating or revoking its key or changing any setting still takes effect within 1 second
in every warm function, wherever the change was made (issue 10). A change made through
this store itself counts at once here.

Every write is conditional on the item's `version` (a number beside the doc, raised by
each write): two admins changing one account at once never lose each other's change,
the second one's change is applied again on top of the first (`change`).
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi import records
from mmsapi.errors import DomainError
from mmsapi.models import Account
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo
from mmsapi.store.shortcodes import Part, Routing, codes_of, gained, lookup_key

# Attempts of one change when other writers keep winning the race (each one re-reads).
CHANGE_ATTEMPTS: Final = 5
# Attempts of one write whose shortcode lookup items others keep changing (each
# refusal reads the item and its account again: store/shortcodes.py).
LOOKUP_ATTEMPTS: Final = 5
# How long a warm function trusts what it read for an API key: well under the 1 second
# within which account changes must count everywhere.
KEY_CACHE_SECONDS: Final = 0.5
# Keys remembered at most (unknown keys too: a client cycling through random keys only
# pushes out the oldest).
KEY_CACHE_ENTRIES: Final = 1024


def hash_key(api_key: str) -> str:
    # API keys are 32+ random characters, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, like the documents' sample key


class AccountStore:
    def __init__(self, table: str | None = None, keys_table: str | None = None) -> None:
        self.table = table or get_settings().accounts_table
        self.keys_table = keys_table or get_settings().api_keys_table
        # key hash -> (monotonic time read, the account or None); oldest first
        self._keys: dict[str, tuple[float, Account | None]] = {}
        self._lock = threading.Lock()  # the local runtime serves requests on threads

    def by_api_key(self, api_key: str) -> Account | None:
        """The account of an API key as stored at most KEY_CACHE_SECONDS ago, or None.
        Unknown and wrong keys take the same path. Shared: not to be changed."""
        digest = hash_key(api_key)
        now = time.monotonic()
        with self._lock:
            cached = self._keys.get(digest)
        if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
            return cached[1]
        account = self._by_key_hash(digest)
        with self._lock:
            self._keys.pop(digest, None)
            self._keys[digest] = (now, account)
            if len(self._keys) > KEY_CACHE_ENTRIES:
                self._keys = {k: v for k, v in self._keys.items() if now - v[0] < KEY_CACHE_SECONDS}
                while len(self._keys) > KEY_CACHE_ENTRIES:
                    del self._keys[next(iter(self._keys))]
        return account

    def forget_keys(self) -> None:
        """Read every key again on its next use (after a change made through this store)."""
        with self._lock:
            self._keys.clear()

    def _by_key_hash(self, digest: str) -> Account | None:
        """The account of a key hash as stored now (two consistent reads), or None."""
        found = dynamo.get_item(self.keys_table, {"key_hash": {"S": digest}}, what="api key")
        if found is None:
            return None
        account = self.get(found["account_id"]["S"])
        # The account's own hash decides: a lookup item left by a failed write opens nothing.
        if account is None or account.key_hash != digest:
            return None
        return account

    def get(self, account_id: str) -> Account | None:
        found = self._read(account_id)
        return found[0] if found else None

    def versioned(self, account_id: str) -> tuple[Account, int] | None:
        """The account and its version (0: written before versions were kept)."""
        return self._read(account_id)

    def _read(self, account_id: str) -> tuple[Account, int] | None:
        item = dynamo.get_item(self.table, {"account_id": {"S": account_id}}, what="account")
        if item is None:
            return None
        version = int(item["version"]["N"]) if "version" in item else 0
        return records.from_json(Account, item["doc"]["S"]), version

    def _item(self, account: Account, version: int = 1) -> dict[str, Any]:
        return {
            "account_id": {"S": account.account_id},
            # Kept beside the doc so that writes can be conditional on the key.
            "key_hash": {"S": account.key_hash},
            "doc": {"S": records.to_json(account)},
            "version": {"N": str(version)},
        }

    @staticmethod
    def _unchanged_since(version: int) -> dict[str, Any]:
        """The condition that nobody wrote the account since it was read at `version`."""
        names = {"ExpressionAttributeNames": {"#v": "version"}}
        if version == 0:
            return {"ConditionExpression": "attribute_not_exists(#v)", **names}
        values = {"ExpressionAttributeValues": {":v": {"N": str(version)}}}
        return {"ConditionExpression": "#v = :v", **names, **values}

    def _key_item(self, account: Account) -> dict[str, Any]:
        return {"key_hash": {"S": account.key_hash}, "account_id": {"S": account.account_id}}

    def create(self, account: Account) -> None:
        """A new account, its key's lookup item and its shortcodes' (which route MO to
        it), all or none. ShortcodeHeldError (nothing written) if another account holds
        one of its shortcodes."""
        head = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": self._item(account),
                    "ConditionExpression": "attribute_not_exists(account_id)",
                }
            },
            {
                "Put": {
                    "TableName": self.keys_table,
                    "Item": self._key_item(account),
                    "ConditionExpression": "attribute_not_exists(key_hash)",
                }
            },
        ]
        routing = Routing(self, account.account_id)
        for _ in range(LOOKUP_ATTEMPTS):
            lookups = routing.parts(codes_of(account), ())
            failed = dynamo.transact_write_failed(
                [*head, *(part for _, part in lookups)], what="account"
            )
            self.forget_keys()  # a key that was unknown here a moment ago
            if not failed:
                return
            if failed[0] < len(head):
                raise DomainError(
                    "account write failed: the account id or the API key exists already"
                )
            for index in failed:
                routing.resolve(lookups[index - len(head)][0])
        raise DomainError(_LOOKUPS_CHANGING.format(account.account_id))

    def change(self, account_id: str, edit: Callable[[Account], Account]) -> Account | None:
        """Apply `edit` to the account as stored now and store the result, atomically:
        if another writer got there between the read and the write, read again and
        apply `edit` again (it must not depend on anything but its argument). Returns
        the account as stored, or None if there is none. Whatever `edit` raises stops
        the change with nothing stored. A changed key_hash retires the old key at once.
        """
        routing = Routing(self, account_id)
        conflicts = lookup_refusals = 0
        while conflicts < CHANGE_ATTEMPTS:
            found = self._read(account_id)
            if found is None:
                return None
            current, version = found
            changed = edit(copy.deepcopy(current))
            if changed.account_id != account_id:
                raise DomainError("account write refused: the account id may not change")
            lookups = routing.parts(gained(current, changed), gained(changed, current))
            refused = self._write(changed, version, current.key_hash, lookups)
            if not refused:
                self.forget_keys()  # this store's own change counts at once here
                return changed
            if None in refused:  # the account changed since read: read it again
                conflicts += 1
                continue
            lookup_refusals += 1
            if lookup_refusals >= LOOKUP_ATTEMPTS:
                raise DomainError(_LOOKUPS_CHANGING.format(account_id))
            for code in refused:
                if code is not None:
                    routing.resolve(code)  # ShortcodeHeldError: another account holds it
        raise DomainError(
            f"account write failed: {account_id} was changed by others {CHANGE_ATTEMPTS} "
            "times while this change was being made; try again"
        )

    def _write(
        self, account: Account, version: int, old_key_hash: str, lookups: list[Part]
    ) -> list[str | None]:
        """Store the account read at `version`, with the lookup parts of the shortcodes
        it gains and loses (store/shortcodes.py). Empty when written; else what refused:
        None for the account (written since) or its key, the code of a lookup part."""
        condition = self._unchanged_since(version)
        if account.key_hash == old_key_hash and not lookups:
            written = dynamo.put_item(
                self.table, self._item(account, version + 1), what="account", **condition
            )
            return [] if written else [None]
        # A new key: the account, the new key's lookup item and the old one's removal, all
        # or none, so the old key stops working the moment the new one starts.
        new_key: list[dict[str, Any]] = []
        if account.key_hash != old_key_hash:
            new_key = [
                {
                    "Put": {
                        "TableName": self.keys_table,
                        "Item": self._key_item(account),
                        "ConditionExpression": "attribute_not_exists(key_hash)",
                    }
                },
                {
                    "Delete": {
                        "TableName": self.keys_table,
                        "Key": {"key_hash": {"S": old_key_hash}},
                    }
                },
            ]
        head = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": self._item(account, version + 1),
                    **condition,
                }
            },
            *new_key,
        ]
        failed = dynamo.transact_write_failed(
            [*head, *(part for _, part in lookups)], what="account"
        )
        return [None if i < len(head) else lookups[i - len(head)][0] for i in failed]

    def put(self, account: Account) -> None:
        """Replace an existing account whose key is unchanged with `account` as given
        (services/accounts.py changes accounts through `change`, which merges)."""

        def replace(stored: Account) -> Account:
            if stored.key_hash != account.key_hash:
                raise DomainError(f"account write failed: the key of {account.account_id} changed")
            return account

        if self.change(account.account_id, replace) is None:
            raise DomainError(f"account write failed: {account.account_id} is gone")

    def backfill_keys(self) -> Backfill:
        """Write the lookup item of every account's key (accounts made before the API keys
        table existed), and of every shortcode that exactly one account holds. A code
        that several accounts hold (given twice before a shortcode had one owner) is
        reported, its item left as it is: which account keeps it is the admin's call.
        Safe to run again."""
        done = Backfill()
        holders: dict[str, list[Account]] = {}
        for account in self.all():
            dynamo.put_item(self.keys_table, self._key_item(account), what="api key")
            done.keys += 1
            for code in dict.fromkeys(s.code for s in account.shortcodes):
                holders.setdefault(code, []).append(account)
        for code, accounts in holders.items():
            if len(accounts) > 1:
                found = dynamo.get_item(self.keys_table, lookup_key(code), what="shortcode")
                named = found["account_id"]["S"] if found else None
                done.contested.append(Contested(code, accounts, named))
                continue
            item = {**lookup_key(code), "account_id": {"S": accounts[0].account_id}}
            dynamo.put_item(self.keys_table, item, what="shortcode")
            done.shortcodes += 1
        return done

    def all(self) -> list[Account]:
        accounts: list[Account] = []
        paginator = aws.dynamodb().get_paginator("scan")
        try:
            for page in paginator.paginate(TableName=self.table):
                accounts.extend(records.from_json(Account, i["doc"]["S"]) for i in page["Items"])
        except ClientError as exc:
            raise DomainError(f"account listing failed: {exc}") from exc
        return sorted(accounts, key=lambda a: a.created_at)


_LOOKUPS_CHANGING: Final = (
    "account write failed: the shortcode lookup items of {} kept changing while this "
    "change was being made; try again"
)


@dataclass(frozen=True)
class Contested:
    """A shortcode several accounts hold, and the account its MO goes to (None: none)."""

    code: str
    holders: list[Account]
    routed_to: str | None


@dataclass
class Backfill:
    keys: int = 0
    shortcodes: int = 0
    contested: list[Contested] = field(default_factory=list)
