"""Creating and changing accounts (used by the admin CLI and the local runtime)."""

from __future__ import annotations

import secrets
import uuid

from mmsapi.models import Account, Dialect, Limits, Shortcode
from mmsapi.store.accounts import AccountStore, hash_key, new_api_key


def parse_shortcode(text: str) -> Shortcode:
    """'28444' or '28444:US' or '28444:US:default'."""
    code, _, rest = text.partition(":")
    country, _, flag = rest.partition(":")
    return Shortcode(
        code=code.strip(), country=(country or "US").upper(), default=flag == "default"
    )


def create_account(
    store: AccountStore,
    name: str,
    *,
    shortcodes: list[Shortcode] | None = None,
    service_id: str = "",
    postback_url: str = "",
    postback_dialect: Dialect = Dialect.CURRENT,
    api_key: str | None = None,
    ip_allowlist: list[str] | None = None,
    allowed_actions: list[str] | None = None,
    limits: Limits | None = None,
) -> tuple[Account, str]:
    """Create an account; returns it and its API key (the only time the key is seen)."""
    key = api_key or new_api_key()
    codes = list(shortcodes or [])
    # Every country served needs a default shortcode; the first of each country is it.
    countries_with_default = {c.country for c in codes if c.default}
    for code in codes:
        if code.country not in countries_with_default:
            code.default = True
            countries_with_default.add(code.country)
    account = Account(
        account_id=uuid.uuid4().hex[:12],
        name=name,
        key_hash=hash_key(key),
        shortcodes=codes,
        default_service_id=service_id,
        postback_url=postback_url,
        postback_dialect=postback_dialect,
        postback_secret=secrets.token_hex(32),
        ip_allowlist=list(ip_allowlist or []),
        limits=limits or Limits(),
    )
    if allowed_actions is not None:
        account.allowed_actions = list(allowed_actions)
    store.create(account)  # the key works from the moment this returns
    return account, key


def set_enabled(store: AccountStore, account_id: str, enabled: bool) -> Account | None:
    account = store.get(account_id)
    if account is None:
        return None
    account.enabled = enabled
    store.put(account)
    return account


def rotate_key(store: AccountStore, account_id: str) -> tuple[Account, str] | None:
    account = store.get(account_id)
    if account is None:
        return None
    key = new_api_key()
    old_key_hash, account.key_hash = account.key_hash, hash_key(key)
    store.replace_key(account, old_key_hash)  # the old key stops working at once
    return account, key
