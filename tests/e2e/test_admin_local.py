"""`mmsapi-admin` against a running `make local`: each change counts within 1 second.

The admin runs as an operator runs it (`python -m mmsapi.admin`, a separate process
finding the runtime through MMS_LOCAL_DATA_DIR); the requests go over HTTP to the
runtime's warm functions, which trust what they read for an API key for
KEY_CACHE_SECONDS (0.5 s): the request that must see a change is made that long after
the command returns, and within 1 second of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import time
from collections.abc import Iterator

import pytest

from mmsapi.store.accounts import KEY_CACHE_SECONDS
from tests.e2e.runtime import KEY, LocalRuntime, Postback, Postbacks, answer, started_runtime

POSTBACK_TIMEOUT = 20.0
US = "14044790000"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with started_runtime(tmp_path_factory.mktemp("admin-local")) as started:
        yield started


@pytest.fixture(scope="module")
def demo(runtime: LocalRuntime) -> str:
    """The demo account's id, as runtime.json gives it."""
    account_id: str = json.loads(runtime.state_file.read_text())["demo_account"]["account_id"]
    return account_id


def admin(runtime: LocalRuntime, *argv: str) -> subprocess.CompletedProcess[str]:
    done = runtime.run("-m", "mmsapi.admin", *argv)
    assert done.returncode == 0, done.stderr
    return done


def post(runtime: LocalRuntime, xml: str) -> dict[str, str]:
    return answer(runtime.post("/ep/v1/", xml))[1]


def save(runtime: LocalRuntime, key: str = KEY) -> dict[str, str]:
    return post(
        runtime,
        f"<request><action>saveMMS</action><api-key>{key}</api-key><name>n</name>"
        "<message-subject>Hi</message-subject><slide><message-text>one</message-text></slide>"
        "</request>",
    )


def send(runtime: LocalRuntime, mms_id: str) -> dict[str, str]:
    return post(
        runtime,
        f"<request><action>sendSavedMMS</action><api-key>{KEY}</api-key><mms-id>{mms_id}</mms-id>"
        f"<to>{US}</to><from>28444</from><service-id>12345</service-id>"
        "<fallback-sms-text>See</fallback-sms-text></request>",
    )


def timed(runtime: LocalRuntime, *argv: str) -> float:
    """Run an admin command; the time it returned (the change is stored by then), once
    the warm functions' copies of the account are out of date."""
    admin(runtime, *argv)
    changed = time.monotonic()
    time.sleep(KEY_CACHE_SECONDS)
    return changed


@pytest.mark.e2e
def test_show_and_list_the_demo_account(runtime: LocalRuntime, demo: str) -> None:
    shown = admin(runtime, "show", demo).stdout
    assert re.search(r"shortcodes:\s+28444:US \(default\)", shown), shown
    assert re.search(r"service-id:\s+12345", shown), shown
    assert demo in admin(runtime, "list").stdout


@pytest.mark.e2e
def test_block_and_disable_count_from_the_next_request(runtime: LocalRuntime, demo: str) -> None:
    # Given a saved template that sends
    saved = save(runtime)
    assert saved["status"] == "Success", saved
    assert send(runtime, saved["mms-id"])["status"] == "Success"
    # When the number is blocked, Then the very next send to it is E114, within 1 s
    changed = timed(runtime, "update", demo, "--block", f"+{US}")
    assert send(runtime, saved["mms-id"])["error-code"] == "E114"
    assert time.monotonic() - changed < 1.0
    timed(runtime, "update", demo, "--unblock", US)
    assert send(runtime, saved["mms-id"])["status"] == "Success"
    # When the account is disabled, Then the next request is E105, until enabled
    changed = timed(runtime, "disable", demo)
    assert save(runtime)["error-code"] == "E105"
    assert time.monotonic() - changed < 1.0
    timed(runtime, "enable", demo)
    assert save(runtime)["status"] == "Success"


@pytest.mark.e2e
def test_moved_postbacks_are_signed_with_the_rotated_secret(
    runtime: LocalRuntime, demo: str
) -> None:
    # Given postbacks moved to another URL, and the secret rotated
    moved = Postbacks()
    runtime.web.expect_request("/moved", method="POST").respond_with_handler(moved.record)
    old_secret = json.loads(runtime.state_file.read_text())["demo_account"]["postback_secret"]
    admin(runtime, "update", demo, "--postback-url", runtime.web.url_for("/moved"))
    rotated = admin(runtime, "rotate-postback-secret", demo).stdout
    secret = rotated.split("postback-secret:")[1].split()[0]
    # When a template is saved
    saved = save(runtime)
    assert saved["status"] == "Success", saved

    def n003(postback: Postback) -> bool:
        return postback.fields.get("mms-id") == saved["mms-id"]

    # Then its N003 arrives at the new URL, verified by the new secret only
    postback = moved.wait_for(n003, POSTBACK_TIMEOUT)
    signature = postback.headers["x-mms-signature"]
    for key, verifies in ((secret, True), (old_secret, False)):
        expected = hmac.new(key.encode(), postback.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, f"sha256={expected}") is verifies


@pytest.mark.e2e
def test_created_account_works_at_once_and_rotated_key_stops(runtime: LocalRuntime) -> None:
    created = admin(runtime, "create-account", "--name", "acme", "--shortcode", "28555").stdout
    account_id = created.split("account-id:")[1].split()[0]
    key = created.split("api-key:")[1].split()[0]
    assert save(runtime, key)["status"] == "Success"
    new_key = admin(runtime, "rotate-key", account_id).stdout.split("api-key:")[1].split()[0]
    time.sleep(KEY_CACHE_SECONDS)  # the warm functions' copy of the old key's account
    assert save(runtime, key)["error-code"] == "E104"
    assert save(runtime, new_key)["status"] == "Success"


@pytest.mark.e2e
def test_invalid_value_exits_2_and_changes_nothing(runtime: LocalRuntime, demo: str) -> None:
    before = admin(runtime, "show", demo, "--json").stdout
    done = runtime.run("-m", "mmsapi.admin", "update", demo, "--block", "12", "--max-slides", "3")
    assert done.returncode == 2
    assert "number '12'" in done.stderr
    assert admin(runtime, "show", demo, "--json").stdout == before


@pytest.mark.e2e
def test_trace_follows_a_send_to_its_delivery_report(runtime: LocalRuntime) -> None:
    # Given a send accepted by the API
    saved = save(runtime)
    tracking = send(runtime, saved["mms-id"])["tracking-id"]
    # When the runtime has delivered it and the simulated MMSC has reported
    deadline = time.monotonic() + POSTBACK_TIMEOUT
    out = ""
    while time.monotonic() < deadline and "postback N102" not in out:
        out = admin(runtime, "trace", tracking).stdout
        time.sleep(0.5)
    # Then the trace shows each step, in order, with its postbacks
    steps = [
        "accepted, queued for delivery",
        "claimed by a delivery worker",
        "sent as MMS; carrier message id",
        "delivered (the carrier's report)",
    ]
    positions = [out.find(step) for step in steps]
    assert -1 not in positions, out
    assert positions == sorted(positions), out
    # And its postbacks' delivery attempts, once PostbackFunction has tried them
    delivered = r"postback N101: id send-\d+-N101, delivered \(HTTP 200\), 1 attempt"
    while time.monotonic() < deadline and not re.search(delivered, out):
        time.sleep(0.5)
        out = admin(runtime, "trace", tracking).stdout
    assert re.search(delivered, out), out
