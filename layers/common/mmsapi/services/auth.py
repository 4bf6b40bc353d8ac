"""Who is calling: API key, account state, source address, allowed actions.

The account is as stored at most 0.5 s ago (store/accounts.KEY_CACHE_SECONDS): a
disabled account, a rotated or revoked key or a changed allow-list counts within 1
second in every warm function, and a burst of requests reads the account once.
"""

from __future__ import annotations

import ipaddress

from mmsapi.errors import ApiError
from mmsapi.models import Account
from mmsapi.observability import logger
from mmsapi.store.accounts import AccountStore

# (account, entry) already logged: an invalid entry is reported once per warm function.
_reported: set[tuple[str, str]] = set()


def _network(account_id: str, entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        # Stored before admin input was validated: it matches no address (fails closed)
        # instead of failing every request of the account with E503.
        if (account_id, entry) not in _reported:
            _reported.add((account_id, entry))
            logger.warning(
                "invalid ip_allowlist entry ignored",
                extra={"account": account_id, "entry": entry[:100]},
            )
        return None


def ip_allowed(account: Account, source_ip: str) -> bool:
    """Whether the source address is in the account's allow-list (empty: any address)."""
    if not account.ip_allowlist:
        return True
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    networks = (_network(account.account_id, entry) for entry in account.ip_allowlist)
    return any(network is not None and address in network for network in networks)


def authenticate(
    accounts: AccountStore, api_key: str | None, source_ip: str, action: str
) -> Account:
    account = accounts.by_api_key(api_key) if api_key else None
    if account is None:
        # Unknown and wrong keys are one case: same answer, same path, same time.
        raise ApiError("E104")
    if not account.enabled:
        raise ApiError("E105")
    if not ip_allowed(account, source_ip):
        raise ApiError("E112")
    if action not in account.allowed_actions:
        raise ApiError("E107")
    return account
