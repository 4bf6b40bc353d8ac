"""The accounts table, and the API keys table that finds an account by its key's hash.

Each key hash has its own item (key_hash -> account_id), written in one transaction
with the account and read with a consistent GetItem: a new key works at once, and a
rotated key stops working at once (a GSI, eventually consistent on AWS, could miss
the new key and still find the old one for a while).

Nothing is cached: every request reads both items (two consistent GetItems, a few
ms), so disabling an account, rotating its key or changing its allow-list takes
effect on the next request of every warm function, wherever the change was made.

Every write is conditional on the item's `version` (a number beside the doc, raised by
each write): two admins changing one account at once never lose each other's change,
the second one's change is applied again on top of the first (`change`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.models import Account
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo

# Attempts of one change when other writers keep winning the race (each one re-reads).
CHANGE_ATTEMPTS: Final = 5


def hash_key(api_key: str) -> str:
    # API keys are 32+ random characters, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, like the documents' sample key


class AccountStore:
    def __init__(self, table: str | None = None, keys_table: str | None = None) -> None:
        self.table = table or get_settings().accounts_table
        self.keys_table = keys_table or get_settings().api_keys_table

    def by_api_key(self, api_key: str) -> Account | None:
        """The account of an API key as stored now, or None. Unknown and wrong keys take
        the same path."""
        digest = hash_key(api_key)
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

    def _read(self, account_id: str) -> tuple[Account, int] | None:
        """The account and its version (0: written before versions were kept)."""
        item = dynamo.get_item(self.table, {"account_id": {"S": account_id}}, what="account")
        if item is None:
            return None
        version = int(item["version"]["N"]) if "version" in item else 0
        return Account.model_validate_json(item["doc"]["S"]), version

    def _item(self, account: Account, version: int = 1) -> dict[str, Any]:
        return {
            "account_id": {"S": account.account_id},
            # Kept beside the doc so that writes can be conditional on the key.
            "key_hash": {"S": account.key_hash},
            "doc": {"S": account.model_dump_json()},
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
        """A new account and its key's lookup item, both or neither."""
        written = dynamo.transact_write(
            [
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
            ],
            what="account",
        )
        if not written:
            raise DomainError("account write failed: the account id or the API key exists already")

    def change(self, account_id: str, edit: Callable[[Account], Account]) -> Account | None:
        """Apply `edit` to the account as stored now and store the result, atomically:
        if another writer got there between the read and the write, read again and
        apply `edit` again (it must not depend on anything but its argument). Returns
        the account as stored, or None if there is none. Whatever `edit` raises stops
        the change with nothing stored. A changed key_hash retires the old key at once.
        """
        for _ in range(CHANGE_ATTEMPTS):
            found = self._read(account_id)
            if found is None:
                return None
            current, version = found
            changed = edit(current.model_copy(deep=True))
            if changed.account_id != account_id:
                raise DomainError("account write refused: the account id may not change")
            if self._write(changed, version, current.key_hash):
                return changed
        raise DomainError(
            f"account write failed: {account_id} was changed by others {CHANGE_ATTEMPTS} "
            "times while this change was being made; try again"
        )

    def _write(self, account: Account, version: int, old_key_hash: str) -> bool:
        """Store the account read at `version`; False if it was written since."""
        condition = self._unchanged_since(version)
        if account.key_hash == old_key_hash:
            return dynamo.put_item(
                self.table, self._item(account, version + 1), what="account", **condition
            )
        # A new key: the account, the new key's lookup item and the old one's removal, all
        # or none, so the old key stops working the moment the new one starts.
        return dynamo.transact_write(
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": self._item(account, version + 1),
                        **condition,
                    }
                },
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
            ],
            what="account",
        )

    def put(self, account: Account) -> None:
        """Replace an existing account whose key is unchanged with `account` as given
        (services/accounts.py changes accounts through `change`, which merges)."""

        def replace(stored: Account) -> Account:
            if stored.key_hash != account.key_hash:
                raise DomainError(f"account write failed: the key of {account.account_id} changed")
            return account

        if self.change(account.account_id, replace) is None:
            raise DomainError(f"account write failed: {account.account_id} is gone")

    def backfill_keys(self) -> int:
        """Write the lookup item of every account's key (accounts made before the API keys
        table existed); returns how many were written. Safe to run again."""
        written = 0
        for account in self.all():
            dynamo.put_item(self.keys_table, self._key_item(account), what="api key")
            written += 1
        return written

    def all(self) -> list[Account]:
        accounts: list[Account] = []
        paginator = aws.dynamodb().get_paginator("scan")
        try:
            for page in paginator.paginate(TableName=self.table):
                accounts.extend(Account.model_validate_json(i["doc"]["S"]) for i in page["Items"])
        except ClientError as exc:
            raise DomainError(f"account listing failed: {exc}") from exc
        return sorted(accounts, key=lambda a: a.created_at)
