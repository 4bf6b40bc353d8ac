"""The local runtime denies what AWS would deny: a call the function's role lacks.

A copy of template.yaml without one grant (ApiFunction's write access to the
templates table) runs in `python -m local.runtime --template <copy>`. saveMMS then
fails there as it would on AWS, and the runtime's AWS gate tells the AccessDenied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.stack import TEMPLATE_PATH, load_template
from tests.e2e.runtime import KEY, LocalRuntime, answer, started_runtime

# The template's relative paths (CodeUri, ContentUri, DefinitionUri) start in these.
CODE_DIRECTORIES = ("functions", "layers", "statemachine")
# The statement (by Sid) of ApiFunction's policy that lets it write templates.
REMOVED = "Templates"

SAVE = (
    "<request><action>saveMMS</action><api-key>" + KEY + "</api-key>"
    "<message-subject>Denied</message-subject><name>denied</name>"
    "<slide><message-text>never stored</message-text></slide></request>"
)


def without_grant(source: Path, target_dir: Path, function: str, sid: str) -> Path:
    """A copy of the template (as JSON, which is YAML too) without one statement of a
    function's policies; the code directories are linked beside it."""
    template = load_template(source)
    policies: list[Any] = template["Resources"][function]["Properties"]["Policies"]
    removed = 0
    for policy in policies:
        statements = policy.get("Statement") if isinstance(policy, dict) else None
        if isinstance(statements, list):
            kept = [s for s in statements if s.get("Sid") != sid]
            removed += len(statements) - len(kept)
            policy["Statement"] = kept
    assert removed == 1, f"{function} has no single statement {sid} to remove"
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in CODE_DIRECTORIES:
        (target_dir / name).symlink_to(source.parent / name, target_is_directory=True)
    copy = target_dir / "template.yaml"
    copy.write_text(json.dumps(template, indent=1), encoding="utf-8")
    return copy


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalRuntime, bytes]:
    """Given the runtime on a template whose ApiFunction cannot write templates,
    When a client saves a template: the answer (the runtime has stopped after)."""
    tmp = tmp_path_factory.mktemp("denial")
    copy = without_grant(TEMPLATE_PATH, tmp / "template", "ApiFunction", REMOVED)
    with started_runtime(tmp, template=copy, expect_denials=True) as runtime:
        saved = runtime.post("/ep/v1/", SAVE)
    return runtime, saved


def test_the_call_the_role_lacks_fails_as_on_aws(ran: tuple[LocalRuntime, bytes]) -> None:
    # Then saveMMS does not succeed: the write was refused
    _, saved = ran
    root, fields = answer(saved)
    assert (root, fields.get("status")) == ("response", "Failure"), saved


def test_the_runtime_tells_the_access_denied(ran: tuple[LocalRuntime, bytes]) -> None:
    # Then the gate's report names the function, the action and the table
    runtime, _ = ran
    report = runtime.gate_report()
    assert report["summary"]["denied"] >= 1
    assert any(
        denial.startswith("ApiFunction: dynamodb:") and "TemplatesTable" in denial
        for denial in report["denials"]
    ), report["denials"]
    # and the runtime's own log says it in AWS's words
    assert "AccessDenied" in runtime.text()
