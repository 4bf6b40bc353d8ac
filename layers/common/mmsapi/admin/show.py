"""How accounts are printed: `show` (everything in force) and `list` (one line each)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields

from mmsapi import records
from mmsapi.models import (
    ALL_ACTIONS,
    DEFAULT_DAILY_QUOTA,
    DEFAULT_THROUGHPUT,
    Account,
    Limits,
)


def fingerprint(secret: str) -> str:
    """Enough of the postback secret's hash to compare with the customer's copy."""
    if not secret:
        return "(none)"
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


def as_text(account: Account) -> str:
    """Every setting in force, one per line (secrets as fingerprints)."""
    codes = [f"{s.code}:{s.country}{' (default)' if s.default else ''}" for s in account.shortcodes]
    actions = account.allowed_actions
    rows: list[tuple[str, object]] = [
        ("account-id", account.account_id),
        ("name", account.name),
        ("enabled", "yes" if account.enabled else "no (requests get E105)"),
        ("created", account.created_at.isoformat(timespec="seconds")),
        ("shortcodes", ", ".join(codes) or "(none: every send gets E111)"),
        ("service-id", account.default_service_id or "(none)"),
        ("service-ids", ", ".join(account.service_ids) or "(none besides service-id)"),
        ("operator-ids", ", ".join(account.operator_ids) or "(any)"),
        ("postback-url", account.postback_url or "(none: no postbacks)"),
        ("postback-dialect", account.postback_dialect.value),
        ("postback-secret", fingerprint(account.postback_secret)),
        ("api-key", f"sha256:{account.key_hash[:12]}"),
        ("actions", "(all)" if set(actions) >= set(ALL_ACTIONS) else ", ".join(actions)),
        ("allow-ip", ", ".join(account.ip_allowlist) or "(any address)"),
        ("blocked", ", ".join(account.blocked_numbers) or "(none)"),
        ("inbox-keywords", ", ".join(account.inbox_keywords) or "(none)"),
    ]
    replies = account.opt_out
    for stem in ("opt_out", "opt_in", "help"):
        label = stem.replace("_", "-")
        words = getattr(replies, f"{stem}_keywords")
        rows.append((f"{label}-keywords", ", ".join(words) or "(none)"))
        rows.append((f"{label}-text", getattr(replies, f"{stem}_text") or "(none)"))
    defaults = Limits()
    for field in fields(Limits):
        if field.name == "max_bytes":
            continue
        name, value = field.name, getattr(account.limits, field.name)
        default = getattr(defaults, name)
        rows.append(
            (
                name.replace("_", "-"),
                f"{value}" + ("" if value == default else f"  (default {default})"),
            )
        )
    rows.extend((f"max-bytes {kind}", cap) for kind, cap in account.limits.max_bytes.items())
    rates = account.rate_limits
    rows.extend(
        (f"throughput {action}", f"{per_second} per second")
        for action, per_second in sorted(rates.throughput.items())
    )
    rows.append(("throughput others", f"{DEFAULT_THROUGHPUT} per second (default)"))
    interval = rates.min_interval_seconds
    rows.append(("min-interval", f"{interval:g} s" if interval else "off (default)"))
    quota = rates.daily_quota
    default_quota = "  (default)" if quota == DEFAULT_DAILY_QUOTA else ""
    rows.append(("daily-quota", f"{quota} requests per UTC day{default_quota}"))
    return "\n".join(f"{label + ':':19} {value}" for label, value in rows)


def as_json(account: Account) -> str:
    """The stored document, secrets replaced by their fingerprints."""
    doc = records.dump(account)
    doc["postback_secret"] = fingerprint(account.postback_secret)
    doc["key_hash"] = f"sha256:{account.key_hash[:12]}"
    return json.dumps(doc, indent=2)


def as_line(account: Account) -> str:
    codes = ",".join(f"{s.code}:{s.country}" for s in account.shortcodes)
    return (
        f"{account.account_id:14} {account.enabled!s:8} {codes:24} "
        f"{account.postback_url:40} {account.name}"
    )


HEADER = f"{'account-id':14} {'enabled':8} {'shortcodes':24} {'postback-url':40} name"
