"""Creating and changing accounts (used by the admin CLI and the local runtime).

Every input is checked before anything is stored (InvalidInputError names the field and
what is wrong): a bad value is refused at the admin's prompt, never found later by a
request of the account.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from dataclasses import fields, replace
from typing import Final
from urllib.parse import urlsplit

import phonenumbers

from mmsapi.models import (
    ALL_ACTIONS,
    DEFAULT_CAPS,
    LIMIT_CEILINGS,
    Account,
    Dialect,
    Limits,
    Shortcode,
)
from mmsapi.store.accounts import AccountStore, hash_key, new_api_key
from mmsapi.store.shortcodes import ShortcodeHeldError

# Short codes are 3 to 8 digits; long codes (10DLC, E.164 without '+') up to 15.
_SHORTCODE: Final = re.compile(r"[0-9]{3,15}")
_SERVICE_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_NAME: Final = 200
_MAX_URL: Final = 2000


class InvalidInputError(ValueError):
    """An account field that may not be stored; the message says which and why."""


def parse_shortcode(text: str) -> Shortcode:
    """'28444' or '28444:US' or '28444:US:default'; InvalidInputError otherwise."""
    code, _, rest = text.partition(":")
    country, _, flag = rest.partition(":")
    if flag not in ("", "default"):
        raise InvalidInputError(f"shortcode {text!r}: the third part may only be 'default'")
    shortcode = Shortcode(
        code=code.strip(), country=(country.strip() or "US").upper(), default=flag == "default"
    )
    check_shortcode(shortcode)
    return shortcode


def check_shortcode(shortcode: Shortcode) -> None:
    if not _SHORTCODE.fullmatch(shortcode.code):
        raise InvalidInputError(f"shortcode {shortcode.code!r}: 3 to 15 ASCII digits expected")
    if shortcode.country not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInputError(
            f"shortcode {shortcode.code}: {shortcode.country!r} is not an ISO 3166 country code"
        )


def check_allowlist(entries: list[str]) -> list[str]:
    """The entries as normalised networks ('203.0.113.7' -> '203.0.113.7/32')."""
    networks: list[str] = []
    for entry in entries:
        try:
            networks.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise InvalidInputError(f"allow-ip {entry!r}: not an IP address or CIDR") from None
    return networks


def check_service_id(service_id: str) -> None:
    if service_id and not _SERVICE_ID.fullmatch(service_id):
        raise InvalidInputError(
            f"service-id {service_id[:80]!r}: 1 to 64 ASCII letters, digits, '-' or '_' expected"
        )


def check_postback_url(url: str) -> None:
    """http or https, a host, no credentials (empty: no postbacks)."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise InvalidInputError(f"postback URL: {exc}") from None
    if len(url) > _MAX_URL or not url.isascii() or any(c.isspace() for c in url):
        raise InvalidInputError(f"postback URL: ASCII, no spaces, {_MAX_URL} characters at most")
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInputError("postback URL: only http and https are allowed")
    if "@" in parts.netloc:
        raise InvalidInputError("postback URL: credentials (user@host) are not allowed")
    if not parts.hostname:
        raise InvalidInputError("postback URL: a host is required")


def check_actions(actions: list[str]) -> None:
    unknown = [a for a in actions if a not in ALL_ACTIONS]
    if unknown or not actions:
        raise InvalidInputError(
            f"actions {','.join(unknown) or '(none)'}: choose from {', '.join(ALL_ACTIONS)}"
        )


def check_limits(limits: Limits) -> None:
    """Every limit a positive whole number, at most its ceiling (models.LIMIT_CEILINGS,
    DEFAULT_CAPS): beyond, requests would outgrow the functions or DynamoDB's items."""
    values: dict[str, tuple[object, int]] = {
        f.name: (getattr(limits, f.name), LIMIT_CEILINGS[f.name])
        for f in fields(limits)
        if f.name != "max_bytes"
    }
    values.update(
        (f"max_bytes.{kind}", (cap, DEFAULT_CAPS[kind])) for kind, cap in limits.max_bytes.items()
    )
    for name, (value, ceiling) in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= ceiling:
            raise InvalidInputError(f"limit {name} = {value}: a whole number from 1 to {ceiling}")


def check_name(name: str) -> None:
    if not name.strip() or len(name) > _MAX_NAME or not name.isprintable():
        raise InvalidInputError(f"name: 1 to {_MAX_NAME} printable characters")


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
    account_id: str | None = None,
    postback_secret: str | None = None,
) -> tuple[Account, str]:
    """Create an account; returns it and its API key (the only time the key is seen).
    InvalidInputError (nothing stored) when an input is not valid, or a shortcode is
    another account's (it names the holder). `account_id` and `postback_secret` are for
    a fixed demo account (the local runtime); else both new."""
    key = api_key or new_api_key()
    codes = list(shortcodes or [])
    check_name(name)
    for code in codes:
        check_shortcode(code)
    repeated = sorted({c.code for c in codes if [d.code for d in codes].count(c.code) > 1})
    if repeated:
        raise InvalidInputError(f"shortcode {', '.join(repeated)}: given more than once")
    check_service_id(service_id)
    check_postback_url(postback_url)
    if postback_dialect not in tuple(Dialect):
        raise InvalidInputError(f"postback dialect: one of {', '.join(Dialect)}")
    networks = check_allowlist(list(ip_allowlist or []))
    if allowed_actions is not None:
        check_actions(allowed_actions)
    check_limits(limits or Limits())
    # Every country served needs a default shortcode; the first of each country is it.
    countries_with_default = {c.country for c in codes if c.default}
    for code in codes:
        if code.country not in countries_with_default:
            code.default = True
            countries_with_default.add(code.country)
    account = Account(
        account_id=account_id or uuid.uuid4().hex[:12],
        name=name,
        key_hash=hash_key(key),
        shortcodes=codes,
        default_service_id=service_id,
        postback_url=postback_url,
        postback_dialect=postback_dialect,
        postback_secret=postback_secret or new_postback_secret(),
        ip_allowlist=networks,
        limits=limits or Limits(),
    )
    if allowed_actions is not None:
        account.allowed_actions = list(allowed_actions)
    try:
        store.create(account)  # the key works from the moment this returns
    except ShortcodeHeldError as exc:
        raise InvalidInputError(str(exc)) from exc
    return account, key


def set_enabled(store: AccountStore, account_id: str, enabled: bool) -> Account | None:
    return store.change(account_id, lambda account: replace(account, enabled=enabled))


def set_allowlist(store: AccountStore, account_id: str, entries: list[str]) -> Account | None:
    """Replace the account's allow-list (empty: any address); InvalidInputError first."""
    networks = check_allowlist(entries)
    return store.change(account_id, lambda account: replace(account, ip_allowlist=networks))


def set_postback(
    store: AccountStore, account_id: str, url: str, *, new_secret: bool = False
) -> Account | None:
    """Change the account's postback URL, and its signing secret when asked."""
    check_postback_url(url)
    secret = new_postback_secret() if new_secret else None

    def edit(account: Account) -> Account:
        account.postback_url = url
        account.postback_secret = secret or account.postback_secret
        return account

    return store.change(account_id, edit)


def new_postback_secret() -> str:
    return secrets.token_hex(32)


def rotate_postback_secret(store: AccountStore, account_id: str) -> Account | None:
    """A new signing secret, used from the next postback on (the old one from then on
    verifies nothing)."""
    secret = new_postback_secret()
    return store.change(account_id, lambda account: replace(account, postback_secret=secret))


def rotate_key(store: AccountStore, account_id: str) -> tuple[Account, str] | None:
    """A new API key; the old one stops working the moment the new one starts."""
    key = new_api_key()
    account = store.change(account_id, lambda account: replace(account, key_hash=hash_key(key)))
    return (account, key) if account is not None else None
