"""The accounts table: one item per account, found by the hash of its API key."""

from __future__ import annotations

import hashlib
import secrets
import time

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.models import Account
from mmsapi.settings import get_settings
from mmsapi.store import aws

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
        try:
            found = aws.dynamodb().query(
                TableName=self.table,
                IndexName=KEY_HASH_INDEX,
                KeyConditionExpression="key_hash = :h",
                ExpressionAttributeValues={":h": {"S": digest}},
                Limit=1,
            )
        except ClientError as exc:
            raise DomainError(f"accounts lookup failed: {exc}") from exc
        items = found.get("Items", [])
        account = Account.model_validate_json(items[0]["doc"]["S"]) if items else None
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[digest] = (now, account)
        return account

    def get(self, account_id: str) -> Account | None:
        try:
            found = aws.dynamodb().get_item(
                TableName=self.table, Key={"account_id": {"S": account_id}}, ConsistentRead=True
            )
        except ClientError as exc:
            raise DomainError(f"account read failed: {exc}") from exc
        item = found.get("Item")
        return Account.model_validate_json(item["doc"]["S"]) if item else None

    def put(self, account: Account) -> None:
        try:
            aws.dynamodb().put_item(
                TableName=self.table,
                Item={
                    "account_id": {"S": account.account_id},
                    "key_hash": {"S": account.key_hash},
                    "doc": {"S": account.model_dump_json()},
                },
            )
        except ClientError as exc:
            raise DomainError(f"account write failed: {exc}") from exc
        self._cache.clear()

    def all(self) -> list[Account]:
        accounts: list[Account] = []
        paginator = aws.dynamodb().get_paginator("scan")
        for page in paginator.paginate(TableName=self.table):
            accounts.extend(Account.model_validate_json(i["doc"]["S"]) for i in page["Items"])
        return sorted(accounts, key=lambda a: a.created_at)
