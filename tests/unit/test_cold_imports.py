"""A cold start loads what its invocation needs: each handler imported in a fresh
interpreter, with the environment Lambda gives it (tracing on), and the modules it must
not load (docs: benchmarks/cold_start.py measures what this keeps cheap)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMON = ROOT / "layers" / "common"

LAMBDA_ENVIRONMENT: Final = {
    "PATH": "/usr/bin:/bin",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_LAMBDA_FUNCTION_NAME": "f",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "_X_AMZN_TRACE_ID": (
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    ),
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9",
}

# Never at any handler's import: pydantic (half a boto3 import: records are dataclasses),
# boto3 (its resources and docs machinery; clients are botocore's, S3's is made from
# boto3 on first use).
NOWHERE: Final = ("pydantic", "pydantic_settings", "boto3")

# What each function's import must leave for the invocations that need it.
NOT_AT_IMPORT: Final = {
    # Every action's service is loaded by its first request (services/api.py).
    "api": (
        "PIL",
        "phonenumbers",
        "mmsapi.media.images",
        "mmsapi.services.save",
        "mmsapi.services.send",
        "mmsapi.services.manage",
        "mmsapi.carrier.mm7_client",
        "mmsapi.carrier.sms",
        "mmsapi.store.handsets",
    ),
    # Only sends to unknown handsets take the Device Discovery steps; only images, Pillow.
    # Only a video over a handset's budget is re-encoded (ffmpeg) at send time.
    "deliver": (
        "mmsapi.services.ddm",
        "mmsapi.services.sweep",
        "PIL",
        "mmsapi.media.transcode",
        "mmsapi.services.view",  # only a send that links to its hosted page
        "aws_lambda_powertools.utilities.batch",  # mmsapi/batch.py does without
    ),
    "postback": ("aws_lambda_powertools.utilities.batch", "asyncio"),
    # Only a Device Discovery Message's report resumes its send; only an MMS from a phone
    # takes the inbound path.
    "report": (
        "PIL",
        "mmsapi.media.images",
        "mmsapi.services.ddm",
        "mmsapi.services.deliver",
        "mmsapi.services.inbound",
    ),
    # Dead letters are rare; the schedule's invocations do not batch.
    "sweeper": ("aws_lambda_powertools.utilities.batch",),
    "view": ("PIL", "phonenumbers", "mmsapi.carrier.mm7"),
}


def _loaded_after(code: str, paths: list[Path], env: dict[str, str] | None = None) -> set[str]:
    probe = (
        f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n"
        f"{code}\n"
        # The modules loaded since `before` (what a probe's setup loaded is not counted).
        "import json; print(json.dumps(sorted(set(sys.modules) - globals().get('before', set()))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**LAMBDA_ENVIRONMENT, **(env or {})},
        cwd="/",
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return set(modules)


def _present(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(f"{n}.") for m in modules)]


@pytest.mark.parametrize("function", sorted(p.parent.name for p in ROOT.glob("functions/*/app.py")))
def test_a_handler_import_loads_nothing_it_does_not_need(function: str) -> None:
    # Given a fresh interpreter with Lambda's environment, tracing on
    # When the function's handler module is imported
    loaded = _loaded_after("import app", [ROOT / "functions" / function, COMMON])
    # Then it is loaded, and nothing its invocations load on their own first use
    assert "app" in loaded
    assert _present(loaded, NOWHERE + NOT_AT_IMPORT.get(function, ())) == []


def test_a_text_only_save_loads_no_image_or_send_code() -> None:
    # Given the emulated AWS with the stack and the documents' sample account
    setup = """
from moto import mock_aws
mock = mock_aws()
mock.start()
import os
from local.functions import function_environment
from local.stack import provision
from mmsapi.models import Account, Shortcode
from mmsapi.settings import get_settings
from mmsapi.store.accounts import AccountStore, hash_key
os.environ.update(function_environment(provision("mmsapi-cold")))
get_settings.cache_clear()
# Stored as the admin stores it (services/accounts.py would load phonenumbers here).
AccountStore().create(Account(
    account_id="cold", name="cold", key_hash=hash_key("qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"),
    default_service_id="12345", shortcodes=[Shortcode(code="28444", country="US")]))
# The emulator's own tools use pydantic: forgotten, so that an import of it shows again.
for name in [m for m in sys.modules if m.split(".")[0] == "pydantic"]:
    del sys.modules[name]
before = set(sys.modules)
assert not [m for m in before if m.split(".")[0] in ("PIL", "phonenumbers", "pydantic")], \
    "vacuous"
"""
    # When the API handler answers a text-only saveMMS (events/api/save-text-current.json)
    answer = f"""
from tests.lambda_context import FakeLambdaContext
import app
event = json.loads(open({str(ROOT / "events/api/save-text-current.json")!r}).read())
assert b"<mms-id>" in app.handler(event, FakeLambdaContext())["body"].encode()
"""
    loaded = _loaded_after(
        "import json, sys\n" + setup + answer,
        [ROOT / "functions" / "api", COMMON, ROOT],
        {"POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_NAMESPACE": "cold"},
    )
    # Then the answer loaded the save path, but no image, send or carrier code, nor pydantic
    assert {"app", "mmsapi.services.save"} <= loaded
    assert _present(loaded, ("pydantic",)) == []
    assert _present(loaded, ("PIL", "phonenumbers", "mmsapi.media.images")) == []
    assert _present(loaded, ("mmsapi.services.send", "mmsapi.carrier.mm7_client")) == []
