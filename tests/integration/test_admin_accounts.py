"""mmsapi-admin: every command, each change seen by the next request of a warm function.

The admin CLI runs as another process would: its own AccountStore, while requests go
through one warm API Context (and a warm postback store) that served a request before
the change. A change counts within 1 second: each command that changes an account is
followed by account_change_counted (the warm function's copy of an account lives 0.5 s).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import replace
from typing import Any

import boto3
import pytest
from pytest_httpserver import HTTPServer

from local.aws_gate import acting_as
from local.stack import Stack
from mmsapi.admin import cli as admin
from mmsapi.admin import target
from mmsapi.admin.changes import SETTINGS
from mmsapi.media.types import MediaKind
from mmsapi.models import Account, Dialect, Limits, Send, SendStatus
from mmsapi.services.deliver import deliver
from mmsapi.services.limits import RateLimiter, own_limiter
from mmsapi.services.postback import DeliveryError, handle_event, sign
from mmsapi.services.report import mm7_report
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.accounts import AccountStore
from mmsapi.store.postback_attempts import PostbackAttemptsStore
from mmsapi.store.sends import MAX_STEPS
from mmsapi.tracking import parse_tracking_id, tracking_id
from tests.conftest import Client
from tests.integration.conftest import REFUSED, Carrier
from tests.integration.helpers import account_change_counted, answer, postback_events

US = "14044790000"
LIST = "<request><action>getMMSTemplates</action><api-key>{key}</api-key></request>"


@pytest.fixture
def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given mmsapi-admin pointed at the test stack's tables (as --stack would)."""
    monkeypatch.setattr(target, "connect", lambda *_: target.Target("test", get_settings()))


READ_ONLY = frozenset({"show", "list", "trace"})


def run_admin(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    admin.main(list(argv))
    if argv[0] not in READ_ONLY:
        account_change_counted()
    return capsys.readouterr().out


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The exit status and error output of a command that must fail."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        admin.main(list(argv))
    code = exited.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err + str(code)


def stored(account_id: str) -> Account:
    account = AccountStore().get(account_id)
    assert account is not None
    return account


def call(client: Client, xml: str) -> dict[str, str]:
    with acting_as("ApiFunction"):
        return answer(client.post(xml))


def listed(client: Client) -> dict[str, str]:
    return call(client, LIST.format(key=client.api_key))


def save(client: Client, text: str = "one", slides: int = 1) -> dict[str, str]:
    body = f"<slide><message-text>{text}</message-text></slide>" * slides
    return call(
        client,
        f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>n</name>"
        f"<message-subject>Hi</message-subject>{body}</request>",
    )


def send(client: Client, mms_id: str, **fields: str) -> dict[str, str]:
    values = {"to": US, "from": "28444", "service-id": "12345", "fallback-sms-text": "See"}
    values.update({name.replace("_", "-"): value for name, value in fields.items()})
    body = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    return call(
        client,
        f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
        f"<mms-id>{mms_id}</mms-id>{body}</request>",
    )


@pytest.fixture
def mms_id(client: Client) -> str:
    """Given a saved template, and a warm API context that has just served the account."""
    got = save(client)
    assert got["status"] == "Success", got
    return got["mms-id"]


# ---- show, list, create ------------------------------------------------------------


def test_show_prints_every_setting_in_force_and_no_secret(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the admin shows the demo account
    out = run_admin(capsys, "show", client.account.account_id)
    # Then every setting is there, as stored
    assert re.search(r"shortcodes:\s+28444:US \(default\)", out)
    assert re.search(r"service-id:\s+12345", out)
    assert re.search(r"postback-url:\s+http://127.0.0.1:9/postback", out)
    assert re.search(r"postback-dialect:\s+current", out)
    assert re.search(r"max-slides:\s+8", out)
    assert re.search(r"enabled:\s+yes", out)
    assert re.search(r"throughput others:\s+100 per second \(default\)", out)
    assert re.search(r"min-interval:\s+off", out)
    assert re.search(r"daily-quota:\s+1000000 requests per UTC day", out)
    # And a changed limit is shown as in force
    changed = run_admin(
        capsys,
        "update",
        client.account.account_id,
        "--throughput",
        "sendMMS=5",
        "--min-interval",
        "2",
    )
    assert re.search(r"throughput sendMMS:\s+5 per second", changed)
    assert re.search(r"min-interval:\s+2 s", changed)
    # And the secret and the key are shown as fingerprints only
    assert client.account.postback_secret not in out
    assert client.api_key not in out
    assert re.search(r"postback-secret:\s+sha256:[0-9a-f]{12}", out)
    # And --json gives the same document, for scripts
    doc = run_admin(capsys, "show", client.account.account_id, "--json")
    assert '"default_service_id": "12345"' in doc
    assert client.account.postback_secret not in doc


def test_created_account_is_listed_and_its_key_works_at_once(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_admin(
        capsys, "create-account", "--name", "acme", "--shortcode", "28555:US", "--service-id", "9"
    )
    account_id = re.search(r"account-id:\s+(\S+)", out)
    key = re.search(r"api-key:\s+(\S+)", out)
    assert account_id
    assert key
    assert account_id[1] in run_admin(capsys, "list")
    assert listed(Client(client.ctx, key[1], stored(account_id[1])))["status"] == "Success"


# ---- update: each setting counts from the next request -----------------------------


def test_blocked_number_is_refused_with_e114_then_unblocked(
    cli: None, client: Client, mms_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = client.account.account_id
    # When the admin blocks the number, written as a person would
    out = run_admin(capsys, "update", account_id, "--block", "+1 (404) 479-0000")
    # Then it is stored normalised as a send's `to` is, and the next send to it is E114
    assert re.search(rf"blocked:\s+{US}", out)
    assert stored(account_id).blocked_numbers == [US]
    assert send(client, mms_id)["error-code"] == "E114"
    # And blocking it again in another form changes nothing
    run_admin(capsys, "update", account_id, "--block", f"00{US}")
    assert stored(account_id).blocked_numbers == [US]
    # When it is unblocked, Then the next send is accepted
    run_admin(capsys, "update", account_id, "--unblock", f"+{US}")
    assert stored(account_id).blocked_numbers == []
    assert send(client, mms_id)["status"] == "Success"


def test_disabled_account_gets_e105_until_enabled(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    assert listed(client)["status"] == "Success"
    run_admin(capsys, "disable", client.account.account_id)
    assert listed(client)["error-code"] == "E105"
    assert re.search(r"enabled:\s+no", run_admin(capsys, "show", client.account.account_id))
    run_admin(capsys, "enable", client.account.account_id)
    assert listed(client)["status"] == "Success"


def test_rotated_key_counts_at_once(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_admin(capsys, "rotate-key", client.account.account_id)
    new_key = out.split("api-key:")[1].split()[0]
    assert listed(client)["error-code"] == "E104"
    assert call(client, LIST.format(key=new_key))["status"] == "Success"


def test_service_and_operator_ids(
    cli: None, client: Client, mms_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = client.account.account_id
    # Given a send naming service-id 777 is refused (E627)
    assert send(client, mms_id, service_id="777")["error-code"] == "E627"
    # When the admin adds it, and limits the operators to 310410
    run_admin(capsys, "update", account_id, "--service-ids", "777", "--operator-ids", "310410")
    # Then the next send may name it, and another operator is refused (E651)
    assert send(client, mms_id, service_id="777", operator_id="310410")["status"] == "Success"
    assert send(client, mms_id, operator_id="310999")["error-code"] == "E651"
    # When the default service-id changes, Then the old one is refused
    run_admin(capsys, "update", account_id, "--service-id", "555", "--operator-ids", "")
    assert send(client, mms_id)["error-code"] == "E627"
    assert send(client, mms_id, service_id="555", operator_id="310999")["status"] == "Success"


def test_shortcodes_are_added_and_removed(
    cli: None, client: Client, mms_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = client.account.account_id
    assert send(client, mms_id, **{"from": "28555"})["error-code"] == "E111"
    run_admin(capsys, "update", account_id, "--add-shortcode", "28555:US:default")
    assert send(client, mms_id, **{"from": "28555"})["status"] == "Success"
    codes = {s.code: s.default for s in stored(account_id).shortcodes}
    assert codes == {"28444": False, "28555": True}
    # When the default is removed, Then the other one of its country becomes the default
    run_admin(capsys, "update", account_id, "--remove-shortcode", "28555")
    assert send(client, mms_id, **{"from": "28555"})["error-code"] == "E111"
    assert [(s.code, s.default) for s in stored(account_id).shortcodes] == [("28444", True)]


def test_allow_list_and_actions(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = client.account.account_id
    run_admin(capsys, "update", account_id, "--allow-ip", "198.51.100.0/24")
    assert listed(client)["error-code"] == "E112"
    run_admin(capsys, "update", account_id, "--allow-ip", "203.0.113.10")
    assert listed(client)["status"] == "Success"
    assert stored(account_id).ip_allowlist == ["198.51.100.0/24", "203.0.113.10/32"]
    run_admin(capsys, "update", account_id, "--clear-allow-ip", "--allow-ip", "198.51.100.7")
    assert listed(client)["error-code"] == "E112"
    run_admin(capsys, "update", account_id, "--clear-allow-ip")
    assert listed(client)["status"] == "Success"
    # When only saveMMS is allowed, Then the listing is refused (E107)
    run_admin(capsys, "update", account_id, "--actions", "saveMMS")
    assert listed(client)["error-code"] == "E107"
    assert save(client)["status"] == "Success"


def test_limits_count_from_the_next_save(
    cli: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = client.account.account_id
    assert save(client, text="twelve chars", slides=2)["status"] == "Success"
    run_admin(capsys, "update", account_id, "--max-text-chars", "5", "--max-slides", "1")
    assert save(client, text="twelve chars")["error-code"] == "E228"
    assert save(client, text="short", slides=2)["error-code"] == "E225"
    run_admin(capsys, "update", account_id, "--max-bytes", "image=1000")
    limits = stored(account_id).limits
    assert (limits.max_text_chars, limits.max_slides) == (5, 1)
    assert limits.max_bytes[MediaKind.IMAGE] == 1000
    assert limits.max_bytes[MediaKind.VIDEO] == Limits().max_bytes[MediaKind.VIDEO]


def test_postback_url_dialect_and_secret_count_from_the_next_postback(
    cli: None, client: Client, httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    httpserver.expect_request("/old").respond_with_data(b"OK")
    httpserver.expect_request("/new").respond_with_data(b"OK")
    account_id = client.account.account_id
    run_admin(capsys, "update", account_id, "--postback-url", httpserver.url_for("/old"))
    old_secret = stored(account_id).postback_secret
    # Given a warm postback function that has delivered one postback
    warm = AccountStore()
    event: dict[str, Any] = {
        "id": "evt-1",
        "detail": {"code": "N003", "account_id": account_id, "fields": {"mms-id": "7"}},
    }
    with acting_as("PostbackFunction"):
        handle_event(event, warm)
    # When the admin moves the postbacks, in the legacy dialect, and rotates the secret
    run_admin(
        capsys,
        "update",
        account_id,
        "--postback-url",
        httpserver.url_for("/new"),
        "--postback-dialect",
        "legacy",
    )
    out = run_admin(capsys, "rotate-postback-secret", account_id)
    secret = out.split("postback-secret:")[1].split()[0]
    with acting_as("PostbackFunction"):
        handle_event({**event, "id": "evt-2"}, warm)
    # Then the next postback goes there, legacy, verified by the new secret only
    request, _ = httpserver.log[-1]
    assert request.path == "/new"
    assert b"<POSTBACK>" in request.get_data()
    assert request.headers["X-MMS-Signature"] == sign(request.get_data(), secret)
    assert request.headers["X-MMS-Signature"] != sign(request.get_data(), old_secret)
    assert stored(account_id).postback_dialect is Dialect.LEGACY
    # And '' stops the postbacks
    run_admin(capsys, "update", account_id, "--postback-url", "")
    with acting_as("PostbackFunction"):
        handle_event({**event, "id": "evt-3"}, warm)
    assert len(httpserver.log) == 2


# ---- invalid input: status 2, a message, nothing stored ----------------------------


def test_rate_limits_count_from_the_next_request(
    cli: None, client: Client, mms_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = client.account.account_id
    now = [1_795_687_200.0]  # the warm function's clock, stopped within one second
    with own_limiter(RateLimiter(clock=lambda: now[0])):
        # Given an account allowed one sendSavedMMS per second
        run_admin(capsys, "update", account_id, "--throughput", "sendSavedMMS=1")
        assert stored(account_id).rate_limits.throughput == {"sendSavedMMS": 1}
        # When it sends twice in that second, Then the second is E113
        assert [send(client, mms_id).get("error-code") for _ in range(2)] == [None, "E113"]
        # And back at the default, the same second has room again
        run_admin(capsys, "update", account_id, "--throughput", "sendSavedMMS=default")
        assert stored(account_id).rate_limits.throughput == {}
        assert send(client, mms_id).get("error-code") is None
        # And with a minimum interval of 30 s, a call 5 s after the last is E106
        run_admin(capsys, "update", account_id, "--min-interval", "30")
        now[0] += 40
        assert listed(client)["status"] == "Success"
        now[0] += 5
        assert listed(client)["error-code"] == "E106"
        # And with a daily quota of 2 requests, the third of the next UTC day is E120
        run_admin(capsys, "update", account_id, "--min-interval", "0", "--daily-quota", "2")
        now[0] += 86_400
        answers = [listed(client).get("error-code") for _ in range(3)]
        assert answers == [None, None, "E120"]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--postback-url", "ftp://example.com/hook"], "http"),
        (["--postback-dialect", "klingon"], "dialect"),
        (["--add-shortcode", "28a44"], "shortcode"),
        (["--add-shortcode", "28444:XX"], "country"),
        (["--remove-shortcode", "99999"], "not one of the account's"),
        (["--service-id", "12 345"], "service-id"),
        (["--service-ids", "ok,not ok"], "service-id"),
        (["--operator-ids", "31O410"], "operator-id"),
        (["--operator-ids", "1" * 20], "operator-id"),
        (["--allow-ip", "10.0.0.0/33"], "allow-ip"),
        (["--actions", "saveMMS,dropTables"], "actions"),
        (["--actions", ""], "actions"),
        (["--block", "12"], "number"),
        (["--block", "+1404479000٠"], "number"),
        (["--unblock", "not a number"], "number"),
        (["--max-slides", "0"], "max-slides"),
        (["--max-slides", "11"], "max-slides"),
        (["--max-text-chars", "²"], "max-text-chars"),
        (["--max-bytes", "image=999999999999"], "max-bytes"),
        (["--max-bytes", "hologram=5"], "max-bytes"),
        (["--name", ""], "name"),
        (["--throughput", "sendSavedMMS=0"], "throughput"),
        (["--throughput", "dropTables=5"], "throughput"),
        (["--throughput", "saveMMS=١٠"], "throughput"),
        (["--min-interval", "-1"], "min-interval"),
        (["--min-interval", "1e9"], "min-interval"),
        (["--min-interval", "0.0004"], "min-interval"),  # would round to 0 ms: off
        (["--throughput", "sendSavedMMS=defaults"], "throughput"),
        (["--daily-quota", "0"], "daily-quota"),
        # One bad value among good ones: nothing of the change is stored
        (["--block", "+14045550100", "--service-id", "bad id!"], "service-id"),
        ([], "nothing to change"),
    ],
)
def test_invalid_update_is_refused_and_nothing_stored(
    cli: None,
    client: Client,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    says: str,
) -> None:
    before = stored(client.account.account_id)
    status, message = refused(capsys, "update", client.account.account_id, *options)
    assert status == 2
    assert says in message
    assert stored(client.account.account_id) == before


def test_update_values_are_checked_before_the_stack_is_looked_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable(*_: object) -> target.Target:
        raise AssertionError("the stack was looked up")

    monkeypatch.setattr(target, "connect", unreachable)
    status, message = refused(capsys, "update", "any", "--max-slides", "99")
    assert (status, "max-slides '99'" in message) == (2, True)


def test_unknown_account_exits_1(
    cli: None, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (
        ["show", "nope"],
        ["update", "nope", "--block", "+14045550100"],
        ["disable", "nope"],
        ["rotate-key", "nope"],
        ["rotate-postback-secret", "nope"],
    ):
        status, message = refused(capsys, *command)
        assert status == 1, command
        assert "no account nope" in message


# ---- two admins at once ------------------------------------------------------------


def test_two_admins_changing_one_account_keep_both_changes(
    cli: None, client: Client, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a second admin who writes between this admin's read and write
    account_id = client.account.account_id
    store_class_read = AccountStore._read
    interleaved: list[str] = []

    def read_then_other_admin_writes(self: AccountStore, wanted: str) -> Any:
        found = store_class_read(self, wanted)
        if not interleaved:
            interleaved.append("other")
            AccountStore().change(wanted, lambda a: replace(a, operator_ids=["310410"]))
        return found

    monkeypatch.setattr(AccountStore, "_read", read_then_other_admin_writes)
    # When this admin blocks a number
    run_admin(capsys, "update", account_id, "--block", "+14045550100")
    # Then both changes are stored: this one was applied again on top of the other
    account = stored(account_id)
    assert interleaved == ["other"]
    assert account.operator_ids == ["310410"]
    assert account.blocked_numbers == ["14045550100"]


def test_an_account_stored_before_versions_is_changed_and_versioned(
    cli: None, client: Client, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the account's item as an older release wrote it (no version attribute)
    table = stack.physical["AccountsTable"]
    key = {"account_id": {"S": client.account.account_id}}
    aws.dynamodb().update_item(TableName=table, Key=key, UpdateExpression="REMOVE version")
    # When two changes are made to it
    run_admin(capsys, "update", client.account.account_id, "--block", "+14045550100")
    run_admin(capsys, "update", client.account.account_id, "--operator-ids", "310410")
    # Then both are stored, and the item carries a version from the first on
    item = aws.dynamodb().get_item(TableName=table, Key=key)["Item"]
    assert item["version"] == {"N": "2"}
    account = stored(client.account.account_id)
    assert (account.blocked_numbers, account.operator_ids) == (["14045550100"], ["310410"])


# ---- where: a deployed stack, found through CloudFormation -------------------------


KEYS_TABLE = {
    "Type": "AWS::DynamoDB::Table",
    "Properties": {
        "TableName": "mmsapi-prod-keys",
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "key_hash", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "key_hash", "KeyType": "HASH"}],
    },
}


@pytest.fixture
def deployed(stack: Stack) -> None:
    """Given a CloudFormation stack whose outputs name the test stack's
    accounts table, as a deployed stack's do; its API keys table has no output (a stack
    made before the output existed) and is found by its logical id."""
    body = {
        "Resources": {"ApiKeysTable": KEYS_TABLE},
        "Outputs": {"AccountsTableName": {"Value": stack.physical["AccountsTable"]}},
    }
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    cloudformation.create_stack(StackName="mmsapi-prod", TemplateBody=json.dumps(body))


def test_a_deployed_stack_is_found_by_name_and_region(
    deployed: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the admin names the stack and its region
    out = run_admin(capsys, "--stack", "mmsapi-prod", "--region", "us-east-1", "list")
    # Then the accounts of the table its output names are listed
    assert client.account.account_id in out
    # And a table without an output is found by its logical id
    found = target.connect("mmsapi-prod", "us-east-1")
    assert found.settings.accounts_table == get_settings().accounts_table
    assert found.settings.api_keys_table == "mmsapi-prod-keys"
    assert "us-east-1" in found.where
    # And in another region there is no such stack
    status, message = refused(capsys, "--stack", "mmsapi-prod", "--region", "eu-west-1", "list")
    assert status == 1
    assert "mmsapi-prod" in message


def test_an_unknown_stack_is_said_so(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    status, message = refused(capsys, "--stack", "nope", "--region", "eu-west-1", "list")
    assert status == 1
    assert "nope" in message


# ---- --help ------------------------------------------------------------------------


def test_help_names_only_options_that_exist(capsys: pytest.CaptureFixture[str]) -> None:
    top = admin.parser()
    [subs] = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    parsers = [top, *subs.choices.values()]
    known = {flag for p in parsers for a in p._actions for flag in a.option_strings}
    for each in parsers:
        mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", each.format_help()))
        assert mentioned <= known, (each.prog, mentioned - known)
    assert "--local" not in known
    # And update offers every row of the settings table
    update = subs.choices["update"].format_help()
    assert all(setting.option in update for setting in SETTINGS)


# ---- trace -------------------------------------------------------------------------


def test_trace_prints_the_timeline_of_one_send(
    cli: None, client: Client, carrier: Carrier, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a send delivered as MMS and reported by the carrier
    got = save(client)
    accepted = send(client, got["mms-id"], client_reference="camp-7")
    tracking = accepted["tracking-id"]
    send_id = parse_tracking_id(tracking)
    assert send_id is not None
    assert deliver(client.ctx, send_id) == "sent as MMS"
    carrier.wait_reports(1)
    _, body, content_type = carrier.reports[0]
    mm7_report(client.ctx, body, content_type)
    # When the admin traces its tracking-id
    out = run_admin(capsys, "trace", tracking)
    # Then it names the send and prints each step in order, with its postback
    assert re.search(r"client-reference:\s+camp-7", out)
    assert re.search(rf"to:\s+{US} from 28444", out)
    steps = out.split("timeline (UTC):")[1]
    expected = [
        r"accepted, queued for delivery",
        r"claimed by a delivery worker",
        r"sent as MMS; carrier message id \S+\s+postback N101",
        r"delivered \(the carrier's report\); handset \S+\s+postback N102",
    ]
    found = [re.search(pattern, steps) for pattern in expected]
    assert all(found), (out, found)
    positions = [match.start() for match in found if match]
    assert positions == sorted(positions), out
    assert re.search(r"postback N102: id send-\d+-N102", out)


def test_trace_prints_each_postbacks_delivery_attempts(
    cli: None,
    client: Client,
    carrier: Carrier,
    stack: Stack,
    httpserver: HTTPServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a receiver that is busy once, then takes the postback
    httpserver.expect_oneshot_request("/hook").respond_with_data("busy", status=503)
    httpserver.expect_request("/hook").respond_with_data("OK")
    account_id = client.account.account_id
    hook = httpserver.url_for("/hook") + "?token=s3cret"  # the customer's own token
    run_admin(capsys, "update", account_id, "--postback-url", hook)
    accepted = send(client, save(client)["mms-id"])
    send_id = parse_tracking_id(accepted["tracking-id"])
    assert send_id is not None
    assert deliver(client.ctx, send_id) == "sent as MMS"
    [event] = [e for e in postback_events(stack) if e["detail"]["code"] == "N101"]
    event["detail"]["postback_id"] = event.pop("postback_id")  # as the queue carries it
    # When PostbackFunction tries it twice (the queue's second receipt)
    with acting_as("PostbackFunction"), pytest.raises(DeliveryError):
        handle_event(event, AccountStore(), None, 1, PostbackAttemptsStore())
    failed = run_admin(capsys, "trace", accepted["tracking-id"])
    with acting_as("PostbackFunction"):
        handle_event(event, AccountStore(), None, 2, PostbackAttemptsStore())
    assert re.search(r"postback N101: id send-\d+-N101, failed: HTTP 503, 1 attempt ", failed)
    assert "s3cret" not in failed
    # Then trace tells the postback's attempts and their outcome
    out = run_admin(capsys, "trace", accepted["tracking-id"])
    assert re.search(r"postback N101: id send-\d+-N101, delivered \(HTTP 200\), 2 attempts", out)


class _Unreachable:
    def record(self, postback_id: str, attempt: int, outcome: str) -> None:
        raise aws.dynamodb().exceptions.ResourceNotFoundException({}, "UpdateItem")


def test_a_postback_delivered_is_not_sent_again_when_its_attempt_cannot_be_noted(
    cli: None, client: Client, httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    httpserver.expect_request("/hook").respond_with_data("OK")
    run_admin(
        capsys, "update", client.account.account_id, "--postback-url", httpserver.url_for("/hook")
    )
    event = {
        "id": "evt-1",
        "detail": {
            "account_id": client.account.account_id,
            "code": "N003",
            "fields": {"mms-id": "100001"},
        },
    }
    handle_event(event, AccountStore(), None, 1, _Unreachable())  # no DeliveryError: no retry
    assert len(httpserver.log) == 1


def test_trace_shows_the_fallback_sms(
    cli: None, client: Client, carrier: Carrier, capsys: pytest.CaptureFixture[str]
) -> None:
    accepted = send(client, save(client)["mms-id"], to=REFUSED)
    send_id = parse_tracking_id(accepted["tracking-id"])
    assert send_id is not None
    assert deliver(client.ctx, send_id) == "sent as SMS"
    out = run_admin(capsys, "trace", accepted["tracking-id"])
    assert re.search(r"fallback SMS sent.*postback N101", out), out


def test_trace_refuses_a_bad_or_unknown_tracking_id(
    cli: None, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    status, message = refused(capsys, "trace", "not base64!")
    assert (status, "tracking-id" in message) == (2, True)
    status, message = refused(capsys, "trace", tracking_id(424242))
    assert (status, "no send" in message) == (1, True)


def test_a_sends_history_is_bounded_and_keeps_its_first_step(client: Client) -> None:
    # Given a send given back to the queue over and over (a carrier down for long)
    send = Send(
        send_id=7,
        account_id=client.account.account_id,
        mms_id=1,
        to=US,
        sender="28444",
        requested_from="28444",
        service_id="12345",
    )
    client.ctx.sends.create(send)
    for _ in range(MAX_STEPS):
        send.status = SendStatus.SUBMITTING
        assert client.ctx.sends.save(send, expected=SendStatus.QUEUED)
        send.status = SendStatus.QUEUED
        assert client.ctx.sends.save(send, expected=SendStatus.SUBMITTING)
    # Then the stored history keeps the acceptance and the latest steps only
    stored_send = client.ctx.sends.get(7)
    assert stored_send is not None
    assert len(stored_send.history) == MAX_STEPS
    assert stored_send.history[0].at == stored_send.created_at
    assert stored_send.history[-1].status is SendStatus.QUEUED
    # And a write refused by its condition adds no step to the send in hand
    before = list(send.history)
    assert not client.ctx.sends.save(send, expected=SendStatus.DELIVERED)
    assert send.history == before
