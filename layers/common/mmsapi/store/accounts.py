"""The accounts table: one item per account, found by the hash of its API key."""

from __future__ import annotations

import hashlib
import secrets
import time

from mmsapi.models import Account
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo

KEY_HASH_INDEX = "by-key-hash"


def hash_key(api_key: str) -> str:
    # API keys are 32+ random characters, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, like the documents' sample key


class AccountStore:
    def __init__(self, table: str | None = None) -> None:
        self.table = table or get_settings().accounts_table
        self._cache: dict[str, tuple[float, Account | None]] = {}

    def by_api_key(self, api_key: str) -> Account | None:
        """The account of an API key, or None. Unknown and wrong keys take the same path."""
        digest = hash_key(api_key)
        ttl = get_settings().account_cache_seconds
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit and now - hit[0] < ttl:
            return hit[1]
        item = dynamo.query_one(self.table, KEY_HASH_INDEX, "key_hash", digest, what="accounts")
        account = Account.model_validate_json(item["doc"]["S"]) if item else None
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[digest] = (now, account)
        return account

    def get(self, account_id: str) -> Account | None:
        item = dynamo.get_item(self.table, {"account_id": {"S": account_id}}, what="account")
        return Account.model_validate_json(item["doc"]["S"]) if item else None

    def put(self, account: Account) -> None:
        item = {
            "account_id": {"S": account.account_id},
            "key_hash": {"S": account.key_hash},
            "doc": {"S": account.model_dump_json()},
        }
        dynamo.put_item(self.table, item, what="account")
        self._cache.clear()

    def all(self) -> list[Account]:
        accounts: list[Account] = []
        paginator = aws.dynamodb().get_paginator("scan")
        for page in paginator.paginate(TableName=self.table):
            accounts.extend(Account.model_validate_json(i["doc"]["S"]) for i in page["Items"])
        return sorted(accounts, key=lambda a: a.created_at)
