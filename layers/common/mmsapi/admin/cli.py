"""mmsapi-admin: create, show, change, disable and re-key the accounts of a stack,
and trace one send.

Where: the local runtime by default (found through <MMS_LOCAL_DATA_DIR>/runtime.json,
default .local-data/, while `make local` runs), or a deployed stack with --stack NAME
(its tables are found in the CloudFormation stack's outputs; AWS credentials and
region as for the AWS CLI: AWS_PROFILE, AWS_REGION, or --region).

Every value is validated before anything is stored: an invalid one is refused with a
message and exit status 2, nothing stored. An unknown account exits with status 1.
Changes count from the next request of every function (the functions read the account
on every request; nothing caches it). Two admins changing one account at once both
keep their change (writes are conditional on the account's version).
"""

from __future__ import annotations

import argparse
import sys

from mmsapi.admin import commands, target
from mmsapi.admin.changes import SETTINGS
from mmsapi.errors import DomainError
from mmsapi.models import ALL_ACTIONS, Dialect
from mmsapi.services.accounts import InvalidInputError
from mmsapi.settings import scoped_settings
from mmsapi.store.accounts import AccountStore

UPDATE = (
    "change any of the account's settings, all or none: every value is checked first, "
    "then the options apply in the order listed below to the account as stored now"
)


def _with_account(
    commands_: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    run: commands.Command,
    help_: str,
) -> argparse.ArgumentParser:
    sub = commands_.add_parser(name, help=help_, description=help_)
    sub.add_argument("account_id", metavar="ID", help="the account id (see `list`)")
    sub.set_defaults(run=run)
    return sub


def _create_parser(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--name", required=True)
    sub.add_argument(
        "--shortcode",
        action="append",
        default=[],
        help="CODE[:COUNTRY[:default]], repeatable (e.g. 28444:US)",
    )
    sub.add_argument("--service-id", default="")
    sub.add_argument("--postback-url", default="")
    sub.add_argument(
        "--postback-dialect", choices=[d.value for d in Dialect], default=Dialect.CURRENT.value
    )
    sub.add_argument("--allow-ip", action="append", default=[], help="CIDR, repeatable")
    sub.add_argument("--actions", default="", help=f"comma list of {', '.join(ALL_ACTIONS)}")
    sub.set_defaults(run=commands.create)


def _update_parser(sub: argparse.ArgumentParser) -> None:
    """One option per row of changes.SETTINGS."""
    for setting in SETTINGS:
        if setting.flag:
            sub.add_argument(setting.option, action="store_true", help=setting.help)
        elif setting.repeat:
            sub.add_argument(
                setting.option,
                action="append",
                metavar=setting.metavar,
                help=setting.help + " (repeatable)",
            )
        else:
            sub.add_argument(setting.option, metavar=setting.metavar, help=setting.help)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="mmsapi-admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument(
        "--stack",
        "--stack-name",
        dest="stack",
        metavar="NAME",
        help="a deployed CloudFormation stack (default: the running local runtime)",
    )
    top.add_argument("--region", help="the stack's AWS region (default: the AWS CLI's)")
    subs = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _create_parser(subs.add_parser("create-account", help="create an account, print its key"))
    subs.add_parser("list", help="list the accounts").set_defaults(run=commands.list_accounts)
    shown = _with_account(subs, "show", commands.show_account, "print every setting in force")
    shown.add_argument("--json", action="store_true", help="as JSON (secrets as fingerprints)")
    updated = _with_account(subs, "update", commands.update, UPDATE)
    updated.set_defaults(check=commands.check_update)
    _update_parser(updated)
    _with_account(subs, "disable", commands.toggle(False), "refuse its requests (E105)")
    _with_account(subs, "enable", commands.toggle(True), "accept its requests again")
    _with_account(subs, "rotate-key", commands.rotate, "issue a new API key; the old one stops")
    _with_account(
        subs,
        "rotate-postback-secret",
        commands.rotate_secret,
        "issue a new postback signing secret; the next postback is signed with it",
    )
    allow = _with_account(
        subs, "set-allow-ip", commands.allow_ip, "replace the IP allow-list (update --allow-ip)"
    )
    allow.add_argument(
        "--allow-ip", action="append", default=[], help="CIDR, repeatable (none: any address)"
    )
    postback = _with_account(
        subs, "set-postback", commands.postback, "change the postback URL (update --postback-url)"
    )
    postback.add_argument("--url", required=True, help="http(s) URL ('' for no postbacks)")
    postback.add_argument("--new-secret", action="store_true", help="issue a new signing secret")
    opted = _with_account(
        subs,
        "opt-outs",
        commands.opt_outs,
        "print every STOP/START/HELP the account received (time, number, keyword, source) "
        "and the numbers opted out now",
    )
    opted.add_argument("--number", help="only this phone number (international form)")
    traced = subs.add_parser(
        "trace", help="print the timeline of one send: accepted, submitted, reported, postbacks"
    )
    traced.add_argument("tracking_id", metavar="TRACKING-ID", help="as the sendMMS answer gave it")
    traced.set_defaults(run=commands.trace_send)
    subs.add_parser(
        "backfill-lookups",
        help="write the API keys and carrier messages tables from the accounts and the sends "
        "awaiting reports (once, after upgrading a stack made before those tables existed)",
    ).set_defaults(run=commands.backfill)
    subs.add_parser(
        "redrive-outbox",
        help="after OutboxDLQAlarm, once the cause is fixed: publish the postbacks left in the "
        "outbox and queue the accepted sends not yet queued",
    ).set_defaults(run=commands.redrive_outbox)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        if hasattr(args, "check"):
            args.check(args)
        where = target.connect(args.stack, args.region)
        with scoped_settings(where.settings):
            args.run(AccountStore(), args)
    except InvalidInputError as exc:
        # As argparse refuses a malformed option: a message and status 2, nothing stored.
        print(f"mmsapi-admin: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (target.TargetError, DomainError) as exc:
        print(f"mmsapi-admin: {exc}", file=sys.stderr)
        sys.exit(1)
