"""What each `mmsapi-admin` command does, given the accounts store and its options.

A command that finds no account exits with status 1; InvalidInputError (status 2,
nothing stored) is raised before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from mmsapi.admin import show, trace
from mmsapi.admin.changes import parse_change
from mmsapi.models import Account, Dialect
from mmsapi.numbers import phone_digits
from mmsapi.services.accounts import (
    InvalidInputError,
    create_account,
    parse_shortcode,
    rotate_key,
    rotate_postback_secret,
    set_allowlist,
    set_enabled,
    set_postback,
)
from mmsapi.store.accounts import AccountStore
from mmsapi.store.opt_outs import OptOutStore
from mmsapi.store.sends import SendStore
from mmsapi.store.shortcodes import ShortcodeHeldError

Command = Callable[[AccountStore, argparse.Namespace], None]


def found(account: Account | None, account_id: str) -> Account:
    if account is None:
        sys.exit(f"mmsapi-admin: no account {account_id}")
    return account


def create(store: AccountStore, args: argparse.Namespace) -> None:
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


def list_accounts(store: AccountStore, _args: argparse.Namespace) -> None:
    print(show.HEADER)
    for account in store.all():
        print(show.as_line(account))


def show_account(store: AccountStore, args: argparse.Namespace) -> None:
    account = found(store.get(args.account_id), args.account_id)
    print(show.as_json(account) if args.json else show.as_text(account))


def check_update(args: argparse.Namespace) -> None:
    """Every value of `update`, checked before the stack is even looked up."""
    args.change = parse_change(vars(args))


def update(store: AccountStore, args: argparse.Namespace) -> None:
    try:
        changed = store.change(args.account_id, args.change)
    except ShortcodeHeldError as exc:  # a shortcode belongs to one account
        raise InvalidInputError(str(exc)) from exc
    account = found(changed, args.account_id)
    print(show.as_text(account))
    print("(in force from the next request)")


def toggle(enabled: bool) -> Command:
    def run(store: AccountStore, args: argparse.Namespace) -> None:
        found(set_enabled(store, args.account_id, enabled), args.account_id)
        print(f"{args.account_id} {'enabled' if enabled else 'disabled'} (from the next request)")

    return run


def rotate(store: AccountStore, args: argparse.Namespace) -> None:
    result = rotate_key(store, args.account_id)
    if result is None:
        found(None, args.account_id)
    else:
        print(f"api-key: {result[1]}    (shown once: the old key no longer works)")


def rotate_secret(store: AccountStore, args: argparse.Namespace) -> None:
    account = found(rotate_postback_secret(store, args.account_id), args.account_id)
    print(f"postback-secret: {account.postback_secret}    (signs from the next postback on)")


def allow_ip(store: AccountStore, args: argparse.Namespace) -> None:
    account = found(set_allowlist(store, args.account_id, args.allow_ip), args.account_id)
    shown = ", ".join(account.ip_allowlist) or "any address"
    print(f"{args.account_id} allows {shown} (from the next request)")


def postback(store: AccountStore, args: argparse.Namespace) -> None:
    account = found(
        set_postback(store, args.account_id, args.url, new_secret=args.new_secret),
        args.account_id,
    )
    print(f"{args.account_id} postbacks go to {account.postback_url or '(none)'}")
    if args.new_secret:
        print(f"postback-secret: {account.postback_secret}    (used from the next postback)")


def backfill(store: AccountStore, _args: argparse.Namespace) -> None:
    """Once, after upgrading a stack made before the lookup tables: without their items,
    old keys would be refused (E104) and reports for messages in flight unmatched."""
    done = store.backfill_keys()
    print(f"{done.keys} API key lookup items written")
    print(f"{done.shortcodes} shortcode lookup items written")
    for contested in done.contested:
        holders = ", ".join(f"{a.account_id} ({a.name})" for a in contested.holders)
        ids = {a.account_id for a in contested.holders}
        routed = contested.routed_to if contested.routed_to in ids else None
        print(
            f"shortcode {contested.code} is held by {len(contested.holders)} accounts: "
            f"{holders}; its MO goes to {routed or 'none of them (refused)'}. "
            "Remove it from all but one "
            f"(update ID --remove-shortcode {contested.code}), then run backfill-lookups again"
        )
    found_sends = SendStore().backfill_carrier_messages()
    print(f"{found_sends} carrier message lookup items written")


def redrive_outbox(_store: AccountStore, _args: argparse.Namespace) -> None:
    """After OutboxDLQAlarm, once OutboxFunction's cause is fixed: publish the postbacks
    left in the outbox and queue every send still queued (services/outbox.redrive)."""
    from mmsapi.services.context import context
    from mmsapi.services.outbox import redrive

    ctx = context()
    done = redrive(ctx.outbox, ctx.events, ctx.send_queue, ctx.sends.queued_ids())
    print(f"{done} postbacks published and sends queued (a send queued twice goes once)")


def trace_send(store: AccountStore, args: argparse.Namespace) -> None:
    printed = trace.trace(args.tracking_id, store)
    if printed is None:
        sys.exit(f"mmsapi-admin: no send {args.tracking_id}")
    print(printed)


def opt_outs(store: AccountStore, args: argparse.Namespace) -> None:
    """The account's compliance record: every STOP/START/HELP received, oldest first,
    then the numbers opted out now."""
    found(store.get(args.account_id), args.account_id)
    number = ""
    if args.number:
        number = phone_digits(args.number) or ""
        if not number:
            raise InvalidInputError(f"--number {args.number[:40]!r}: not a phone number")
    records = OptOutStore()
    print(
        f"{'processed':32} {'number':16} {'action':8} {'keyword':12} via  shortcode  "
        f"message-id  reply  received"
    )
    for event in records.events(args.account_id, number):
        print(
            f"{event.at:32} {event.number:16} {event.action.value:8} {event.keyword:12} "
            f"{event.source:4} {event.shortcode:10} {event.message_id}  "
            f"{event.reply_id or '(none)'}  {event.received_at or '(not given)'}"
        )
    now = [n for n in records.numbers(args.account_id) if not number or n == number]
    print(f"opted out now: {', '.join(now) or '(none)'}")
