"""`make local` keeps its state across restarts: templates, accounts, sends and media
stay in <data dir>/state/, the demo account is the same one, and `--reset` forgets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.runtime import KEY, ROOT, LocalRuntime, answer, started_runtime

PHOTO_SLIDE = "<slide><message-text>one</message-text></slide>"


def post(runtime: LocalRuntime, xml: str) -> dict[str, str]:
    return answer(runtime.post("/ep/v1/", xml))[1]


def save(runtime: LocalRuntime) -> dict[str, str]:
    return post(
        runtime,
        f"<request><action>saveMMS</action><api-key>{KEY}</api-key><name>kept</name>"
        f"<message-subject>Hi</message-subject>{PHOTO_SLIDE}</request>",
    )


def send(runtime: LocalRuntime, mms_id: str) -> dict[str, str]:
    return post(
        runtime,
        f"<request><action>sendSavedMMS</action><api-key>{KEY}</api-key>"
        f"<mms-id>{mms_id}</mms-id><to>14044790000</to><from>28444</from>"
        "<service-id>12345</service-id><fallback-sms-text>see</fallback-sms-text></request>",
    )


def demo(runtime: LocalRuntime) -> dict[str, str]:
    account: dict[str, str] = json.loads(runtime.state_file.read_text())["demo_account"]
    return account


def test_a_saved_mms_is_sent_after_a_restart_and_reset_forgets_it(tmp_path: Path) -> None:
    # Given a template saved on a runtime that is then stopped
    with started_runtime(tmp_path) as first:
        saved = save(first)
        assert saved["status"] == "Success", saved
        before = demo(first)
    # When the runtime starts again on the same data directory
    with started_runtime(tmp_path) as second:
        # Then the saved mms-id is sent, by the same demo account with the same secret
        sent = send(second, saved["mms-id"])
        assert sent["status"] == "Success", sent
        after = demo(second)
        assert after["account_id"] == before["account_id"]
        assert after["postback_secret"] == before["postback_secret"]
        # And new ids carry on from the kept ones (no mms-id is given twice)
        assert int(save(second)["mms-id"]) > int(saved["mms-id"])
    # When the state is reset
    environment = {**second.env}
    reset = subprocess.run(
        [sys.executable, "-m", "local.runtime", "--reset"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert reset.returncode == 0, reset.stderr
    # Then the next start knows no template any more
    with started_runtime(tmp_path) as third:
        assert send(third, saved["mms-id"])["error-code"] == "E241"


def test_the_demo_secret_account_id_and_carrier_token_can_be_set(tmp_path: Path) -> None:
    secret = "s" * 64
    env = {
        "MMS_LOCAL_POSTBACK_SECRET": secret,
        "MMS_LOCAL_ACCOUNT_ID": "acme00000042",
        "MMS_LOCAL_CARRIER_TOKEN": "pinned-carrier-token",
    }
    with started_runtime(tmp_path, env=env) as runtime:
        account = demo(runtime)
        assert account["postback_secret"] == secret
        assert account["account_id"] == "acme00000042"
        assert save(runtime)["status"] == "Success"
        assert f"{runtime.api_url}/carrier/mm7/pinned-carrier-token" in runtime.text()


def test_reset_refuses_while_the_runtime_runs(tmp_path: Path) -> None:
    with started_runtime(tmp_path) as runtime:
        state = tmp_path / "data" / "state" / "dynamodb"
        deadline = time.monotonic() + 20
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # the first snapshot
        assert state.exists()
        done = subprocess.run(
            [sys.executable, "-m", "local.runtime", "--reset"],
            cwd=ROOT,
            env=runtime.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0
        assert "Another local runtime" in done.stderr
        assert state.exists()
