"""The accounts table, and the API keys table that finds an account by its key's hash.

Each key hash has its own item (key_hash -> account_id), written in one transaction
with the account and read with a consistent GetItem: a new key works at once, and a
rotated key stops working at once (a GSI, eventually consistent on AWS, could miss
the new key and still find the old one for a while).

Nothing is cached: every request reads both items (two consistent GetItems, a few
ms), so disabling an account, rotating its key or changing its allow-list takes
effect on the next request of every warm function, wherever the change was made.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from mmsapi.errors import DomainError
from mmsapi.models import Account
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo


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
        item = dynamo.get_item(self.table, {"account_id": {"S": account_id}}, what="account")
        return Account.model_validate_json(item["doc"]["S"]) if item else None

    def _item(self, account: Account) -> dict[str, Any]:
        return {
            "account_id": {"S": account.account_id},
            # Kept beside the doc so that writes can be conditional on the key.
            "key_hash": {"S": account.key_hash},
            "doc": {"S": account.model_dump_json()},
        }

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

    def put(self, account: Account) -> None:
        """Update an existing account whose key is unchanged (rotate_key changes keys)."""
        written = dynamo.put_item(
            self.table,
            self._item(account),
            what="account",
            ConditionExpression="attribute_exists(account_id) AND key_hash = :key",
            ExpressionAttributeValues={":key": {"S": account.key_hash}},
        )
        if not written:
            raise DomainError(
                f"account write failed: {account.account_id} is gone or its key was rotated"
            )

    def replace_key(self, account: Account, old_key_hash: str) -> None:
        """Store the account with its new key_hash; the old key's lookup item goes in the
        same transaction, so the old key stops working the moment the new one starts."""
        written = dynamo.transact_write(
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": self._item(account),
                        "ConditionExpression": "key_hash = :old",
                        "ExpressionAttributeValues": {":old": {"S": old_key_hash}},
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
        if not written:
            raise DomainError(
                f"account write failed: the key of {account.account_id} changed meanwhile"
            )

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
        for page in paginator.paginate(TableName=self.table):
            accounts.extend(Account.model_validate_json(i["doc"]["S"]) for i in page["Items"])
        return sorted(accounts, key=lambda a: a.created_at)
