"""mmsapi-admin: create, list, disable and re-key accounts.

Works against the local runtime (`--local`, the default when it is running) or a
deployed stack (`--stack-name`, table found in the stack's outputs).

Every input is validated before anything is stored: an invalid one is refused with
a message and exit status 2. Changes count from the next request: the functions
read the account on every request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import boto3

from mmsapi.models import ALL_ACTIONS, Dialect
from mmsapi.services.accounts import (
    InvalidInputError,
    create_account,
    parse_shortcode,
    rotate_key,
    set_allowlist,
    set_enabled,
    set_postback,
)
from mmsapi.store.accounts import AccountStore
from mmsapi.store.sends import SendStore


def _state_file() -> Path:
    # The local runtime writes this file while it runs (same variable, same default).
    return Path(os.environ.get("MMS_LOCAL_DATA_DIR", ".local-data")) / "runtime.json"


def _tables(args: argparse.Namespace) -> dict[str, str]:
    """The tables by their output names (AccountsTableName, ApiKeysTableName, ...):
    API keys are written with their accounts."""
    if args.stack_name:
        cloudformation = boto3.client("cloudformation", region_name=args.region)
        stack = cloudformation.describe_stacks(StackName=args.stack_name)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    state_file = _state_file()
    if not state_file.exists():
        sys.exit(
            "The local runtime is not running here (start it with `make local`), "
            "or pass --stack-name for a deployed stack."
        )
    state = json.loads(state_file.read_text())
    os.environ["AWS_ENDPOINT_URL"] = state["aws_endpoint"]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    environment = state["environment"]  # the API function's
    return {
        "AccountsTableName": str(environment["MMS_ACCOUNTS_TABLE"]),
        "ApiKeysTableName": str(environment["MMS_API_KEYS_TABLE"]),
    }


def _create(store: AccountStore, args: argparse.Namespace) -> None:
    account, key = create_account(
        store,
        args.name,
        shortcodes=[parse_shortcode(s) for s in args.shortcode],
        service_id=args.service_id,
        postback_url=args.postback_url,
        postback_dialect=Dialect(args.postback_dialect),
        ip_allowlist=args.allow_ip,
        allowed_actions=[a.strip() for a in args.actions.split(",")] if args.actions else None,
    )
    print(f"account-id:      {account.account_id}")
    print(f"api-key:         {key}    (shown once: store it now)")
    print(f"postback-secret: {account.postback_secret}")


def _list(store: AccountStore, _args: argparse.Namespace) -> None:
    print(f"{'account-id':14} {'enabled':8} {'shortcodes':24} {'postback-url':40} name")
    for account in store.all():
        codes = ",".join(f"{s.code}:{s.country}" for s in account.shortcodes)
        print(
            f"{account.account_id:14} {account.enabled!s:8} {codes:24} "
            f"{account.postback_url:40} {account.name}"
        )


Command = Callable[[AccountStore, argparse.Namespace], None]


def _toggle(enabled: bool) -> Command:
    def run(store: AccountStore, args: argparse.Namespace) -> None:
        if set_enabled(store, args.account_id, enabled) is None:
            sys.exit(f"no account {args.account_id}")
        print(f"{args.account_id} {'enabled' if enabled else 'disabled'}")

    return run


def _rotate(store: AccountStore, args: argparse.Namespace) -> None:
    result = rotate_key(store, args.account_id)
    if result is None:
        sys.exit(f"no account {args.account_id}")
    print(f"api-key: {result[1]}    (shown once: the old key no longer works)")


def _allow_ip(store: AccountStore, args: argparse.Namespace) -> None:
    account = set_allowlist(store, args.account_id, args.allow_ip)
    if account is None:
        sys.exit(f"no account {args.account_id}")
    shown = ", ".join(account.ip_allowlist) or "any address"
    print(f"{args.account_id} allows {shown} (from the next request)")


def _postback(store: AccountStore, args: argparse.Namespace) -> None:
    account = set_postback(store, args.account_id, args.url, new_secret=args.new_secret)
    if account is None:
        sys.exit(f"no account {args.account_id}")
    print(f"{args.account_id} postbacks go to {account.postback_url or '(none)'}")
    if args.new_secret:
        print(f"postback-secret: {account.postback_secret}    (used from the next postback)")


def _backfill(store: AccountStore, args: argparse.Namespace) -> None:
    """Once, after upgrading a stack made before the lookup tables: without their items,
    old keys would be refused (E104) and reports for messages in flight unmatched."""
    keys = store.backfill_keys()
    print(f"{keys} API key lookup items written")
    sends_table = args.tables.get("SendsTableName")
    carrier_table = args.tables.get("CarrierMessagesTableName")
    if sends_table and carrier_table:
        sends = SendStore(table=sends_table, carrier_table=carrier_table)
        found = sends.backfill_carrier_messages()
        print(f"{found} carrier message lookup items written")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mmsapi-admin", description=__doc__)
    top.add_argument("--stack-name", help="a deployed stack (default: the local runtime)")
    top.add_argument("--region", default=None)
    commands = top.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-account", help="create an account and print its key")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--shortcode",
        action="append",
        default=[],
        help="CODE[:COUNTRY[:default]], repeatable (e.g. 28444:US)",
    )
    create.add_argument("--service-id", default="")
    create.add_argument("--postback-url", default="")
    create.add_argument(
        "--postback-dialect", choices=[d.value for d in Dialect], default=Dialect.CURRENT.value
    )
    create.add_argument("--allow-ip", action="append", default=[], help="CIDR, repeatable")
    create.add_argument("--actions", default="", help=f"comma list of {', '.join(ALL_ACTIONS)}")
    create.set_defaults(run=_create)
    commands.add_parser("list", help="list accounts").set_defaults(run=_list)
    for name, enabled in (("disable", False), ("enable", True)):
        sub = commands.add_parser(name, help=f"{name} an account")
        sub.add_argument("account_id")
        sub.set_defaults(run=_toggle(enabled))
    rotate = commands.add_parser("rotate-key", help="issue a new API key")
    rotate.add_argument("account_id")
    rotate.set_defaults(run=_rotate)
    allow = commands.add_parser("set-allow-ip", help="replace an account's IP allow-list")
    allow.add_argument("account_id")
    allow.add_argument(
        "--allow-ip", action="append", default=[], help="CIDR, repeatable (none: any address)"
    )
    allow.set_defaults(run=_allow_ip)
    postback = commands.add_parser("set-postback", help="change an account's postback URL")
    postback.add_argument("account_id")
    postback.add_argument("--url", required=True, help="http(s) URL ('' for no postbacks)")
    postback.add_argument("--new-secret", action="store_true", help="issue a new signing secret")
    postback.set_defaults(run=_postback)
    commands.add_parser(
        "backfill-lookups",
        help="write the API keys and carrier messages tables from the accounts and the sends "
        "awaiting reports (once, after upgrading a stack made before those tables existed)",
    ).set_defaults(run=_backfill)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.tables = _tables(args)
    store = AccountStore(
        table=args.tables["AccountsTableName"], keys_table=args.tables["ApiKeysTableName"]
    )
    try:
        args.run(store, args)
    except InvalidInputError as exc:
        # As argparse refuses a malformed option: a message and status 2, nothing stored.
        print(f"mmsapi-admin: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
