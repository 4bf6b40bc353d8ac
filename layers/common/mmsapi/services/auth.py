"""Who is calling: API key, account state, source address, allowed actions."""

from __future__ import annotations

import ipaddress

from mmsapi.errors import ApiError
from mmsapi.models import Account
from mmsapi.store.accounts import AccountStore


def _ip_allowed(source_ip: str, allowlist: list[str]) -> bool:
    if not allowlist:
        return True
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in allowlist)


def authenticate(
    accounts: AccountStore, api_key: str | None, source_ip: str, action: str
) -> Account:
    account = accounts.by_api_key(api_key) if api_key else None
    if account is None:
        # Unknown and wrong keys are one case: same answer, same path, same time.
        raise ApiError("E104")
    if not account.enabled:
        raise ApiError("E105")
    if not _ip_allowed(source_ip, account.ip_allowlist):
        raise ApiError("E112")
    if action not in account.allowed_actions:
        raise ApiError("E107")
    return account
