"""Translate, then lint: template.yaml as CloudFormation sees it, for every parameter set.

`sam deploy` has CloudFormation run the SAM transform; cfn-lint no longer does, so a
defect that only the transform makes (the HTTP API's OpenAPI body naming the functions'
ARNs, the generated roles) passes `cfn-lint template.yaml` and fails the deploy. Here
each parameter set of local.translate.PARAMETER_SETS is translated offline with
aws-sam-translator (the transform's library), then:

- cfn-lint (its Python API, region us-east-1, the set's parameter values) reports no
  error and no warning (a warning is usually a deploy-time surprise: allow one only by
  naming it in ALLOWED_WARNINGS, with the reason);
- the resources' dependency graph (Ref, GetAtt, Sub, DependsOn, every Fn::If branch)
  has no cycle, which CloudFormation refuses a change set for;
- the translated resources are the ones expected (VPC only with the VPC parameters,
  the public URL only where it is cycle-free, no wildcard grants).

Each check also has a test that sees it fail on a broken template.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]
from cfnlint.config import ParameterSet  # type: ignore[import-untyped]
from cfnlint.rules import Match  # type: ignore[import-untyped]

from local.cfn_graph import (
    CycleError,
    assert_acyclic,
    dependencies,
    evaluate_conditions,
    find_cycle,
    resolve_conditions,
)
from local.stack import REPO_ROOT, TEMPLATE_PATH, load_template
from local.translate import PARAMETER_SETS, declared_parameters, translate

Template = dict[str, Any]
REGION = "us-east-1"
# cfn-lint warning rule ids tolerated, each with its reason. None today.
ALLOWED_WARNINGS: dict[str, str] = {}
FUNCTION = "AWS::Lambda::Function"
ROLE = "AWS::IAM::Role"


def _lint(template: Template, parameters: dict[str, str] | None = None) -> list[Match]:
    """cfn-lint's matches for a translated template (as JSON), with these parameter values."""
    config = ManualArgs(regions=[REGION])
    if parameters is not None:
        config["parameters"] = [ParameterSet(source=None, parameters=_typed(parameters))]
    matches: list[Match] = lint(json.dumps(template), config=config)
    return matches


def _typed(parameters: dict[str, str]) -> dict[str, Any]:
    """Values as cfn-lint wants them: lists for the list parameters."""
    declared = load_template().get("Parameters", {})
    typed: dict[str, Any] = {}
    for name, value in parameters.items():
        kind = str(declared.get(name, {}).get("Type", "String"))
        is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
        typed[name] = [part.strip() for part in value.split(",")] if is_list else value
    return typed


def _described(matches: list[Match]) -> str:
    return "\n".join(f"{m.rule.id} {m.filename or ''} {m.message}" for m in matches)


def _conditions(name: str) -> dict[str, bool]:
    given = PARAMETER_SETS[name]
    return evaluate_conditions(translate(given), declared_parameters(load_template(), given))


def _deployed(name: str) -> Template:
    """The translated template of a parameter set with its conditions applied."""
    template = translate(PARAMETER_SETS[name])
    return dict(resolve_conditions(template, _conditions(name)))


# ---------------------------------------------------------------- cfn-lint


@pytest.mark.parametrize("name", sorted(PARAMETER_SETS))
def test_the_translated_template_lints_clean(name: str) -> None:
    # Given the template as the SAM transform leaves it for this deployment
    translated = translate(PARAMETER_SETS[name])
    # When cfn-lint checks it with the deployment's parameter values
    matches = _lint(translated, PARAMETER_SETS[name])
    # Then it reports no error, and no warning that is not allowed by name
    errors = [m for m in matches if m.rule.id.startswith("E")]
    warnings = [m for m in matches if m.rule.id.startswith("W")]
    assert errors == [], _described(errors)
    unexpected = [m for m in warnings if m.rule.id not in ALLOWED_WARNINGS]
    assert unexpected == [], _described(unexpected)


def test_the_translated_template_lints_clean_for_any_parameters() -> None:
    # Given the translated template, linted without values: every condition both ways
    matches = _lint(translate(PARAMETER_SETS["defaults"]))
    errors = [m for m in matches if m.rule.id.startswith(("E", "W"))]
    assert [m for m in errors if m.rule.id not in ALLOWED_WARNINGS] == [], _described(errors)


def test_the_lint_fails_on_a_translated_template_aws_would_refuse() -> None:
    # Given a translated template whose function runs longer than Lambda allows
    broken = translate(PARAMETER_SETS["defaults"])
    broken["Resources"]["DeliverFunction"]["Properties"]["Timeout"] = 1000
    # When it is linted, Then cfn-lint names the error
    errors = [m for m in _lint(broken, PARAMETER_SETS["defaults"]) if m.rule.id.startswith("E")]
    assert errors, "cfn-lint accepted a 1000 s Lambda timeout"
    assert any("Timeout" in "/".join(map(str, m.path)) for m in errors), _described(errors)


# ---------------------------------------------------------------- cycles


@pytest.mark.parametrize("name", sorted(PARAMETER_SETS))
def test_the_translated_template_has_no_dependency_cycle(name: str) -> None:
    translated = translate(PARAMETER_SETS[name])
    # Every Fn::If branch counts: a loop on a branch not taken today is still reported.
    assert find_cycle(dependencies(translated)) is None
    # And the deployment's own branches, with the resources its conditions create.
    assert_acyclic(translated, _conditions(name))


def _tiny(resources: dict[str, Any], conditions: dict[str, Any] | None = None) -> Template:
    template: Template = {"Resources": resources}
    if conditions:
        template["Parameters"] = {"Flag": {"Type": "String", "Default": "off"}}
        template["Conditions"] = conditions
    return template


def test_the_cycle_check_names_the_loop() -> None:
    # Given A -> B (GetAtt) -> C (Sub ${A.Arn}) -> A, and D outside the loop
    template = _tiny(
        {
            "A": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Fn::GetAtt": ["B", "Arn"]}}},
            "B": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Fn::Sub": "${C.Arn}/x"}}},
            "C": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Fn::Sub": "${A}-${!B}"}}},
            "D": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Ref": "A"}}},
        }
    )
    # When it is checked, Then the error names the loop, in order
    with pytest.raises(CycleError) as found:
        assert_acyclic(template)
    assert found.value.cycle == ["A", "B", "C", "A"]
    assert "A -> B -> C -> A" in str(found.value)


def test_the_cycle_check_follows_depends_on_and_sub_variables() -> None:
    template = _tiny(
        {
            "A": {"Type": "AWS::SQS::Queue", "DependsOn": ["B"]},
            "B": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"X": {"Fn::Sub": ["${V}", {"V": {"Ref": "A"}}]}},
            },
        }
    )
    assert find_cycle(dependencies(template)) == ["A", "B", "A"]


def test_a_loop_behind_a_condition_counts_unless_the_condition_rules_it_out() -> None:
    # Given A -> B only when Flag is on, and B -> A always
    loop = {"Fn::If": ["On", {"Ref": "B"}, {"Ref": "AWS::NoValue"}]}
    template = _tiny(
        {
            "A": {"Type": "AWS::SQS::Queue", "Properties": {"X": loop}},
            "B": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Ref": "A"}}},
        },
        {"On": {"Fn::Equals": [{"Ref": "Flag"}, "on"]}},
    )
    # Then every branch counts by default, and the chosen one when conditions are given
    assert find_cycle(dependencies(template)) == ["A", "B", "A"]
    assert evaluate_conditions(template, {}) == {"On": False}
    assert find_cycle(dependencies(template, {"On": False})) is None
    assert find_cycle(dependencies(template, {"On": True})) == ["A", "B", "A"]


def test_the_gate_sees_the_loop_that_the_transform_makes(tmp_path: Path) -> None:
    # Given template.yaml with the HTTP API's URL back in every function's environment
    # (as it was when `sam deploy` failed), in a copy that keeps its state machine files
    sam = load_template(TEMPLATE_PATH)
    variables = sam["Globals"]["Function"]["Environment"]["Variables"]
    variables["MMS_PUBLIC_BASE_URL"] = {
        "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    }
    shutil.copytree(REPO_ROOT / "statemachine", tmp_path / "statemachine")
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(sam), encoding="utf-8")
    # When it is translated, Then the cycle check names the loop through the HTTP API
    with pytest.raises(CycleError) as found:
        assert_acyclic(translate(PARAMETER_SETS["defaults"], path))
    assert "HttpApi" in found.value.cycle


# ---------------------------------------------------------------- what is deployed


@pytest.mark.parametrize("name", sorted(PARAMETER_SETS))
def test_only_the_carrier_function_joins_the_carrier_vpc(name: str) -> None:
    deployed = _deployed(name)
    in_vpc = {
        logical_id: res["Properties"]["VpcConfig"]
        for logical_id, res in deployed["Resources"].items()
        if res["Type"] == FUNCTION and "VpcConfig" in res["Properties"]
    }
    if name == "carrier-vpc":
        assert in_vpc == {
            "DeliverFunction": {
                "SubnetIds": {"Ref": "CarrierSubnetIds"},
                "SecurityGroupIds": {"Ref": "CarrierSecurityGroupIds"},
            }
        }
    else:
        assert in_vpc == {}


def test_the_vpc_needs_both_subnets_and_security_groups() -> None:
    given = dict(PARAMETER_SETS["carrier-vpc"], CarrierSecurityGroupIds="")
    template = translate(given)
    conditions = evaluate_conditions(template, declared_parameters(load_template(), given))
    assert conditions["HasCarrierVpc"] is False
    assert _conditions("carrier-vpc")["HasCarrierVpc"] is True
    # and CloudFormation refuses subnets without security groups (a rule it checks)
    rule = template["Rules"]["CarrierVpcComplete"]
    assert evaluate_conditions(
        {
            "Parameters": template["Parameters"],
            "Conditions": {"Asserted": rule["Assertions"][0]["Assert"]},
        },
        declared_parameters(load_template(), given),
    ) == {"Asserted": False}


def _environment(deployed: Template, function: str) -> dict[str, Any]:
    props = deployed["Resources"][function]["Properties"]
    variables: dict[str, Any] = props.get("Environment", {}).get("Variables", {})
    return variables


@pytest.mark.parametrize("name", sorted(PARAMETER_SETS))
def test_only_the_deliver_function_knows_the_public_url(name: str) -> None:
    deployed = _deployed(name)
    functions = [k for k, r in deployed["Resources"].items() if r["Type"] == FUNCTION]
    knowing = [f for f in functions if "MMS_PUBLIC_BASE_URL" in _environment(deployed, f)]
    assert knowing == ["DeliverFunction"]
    url = _environment(deployed, "DeliverFunction")["MMS_PUBLIC_BASE_URL"]
    if "PublicBaseUrl" in PARAMETER_SETS[name]:
        assert url == {"Ref": "PublicBaseUrl"}
    else:
        assert "${HttpApi}" in url["Fn::Sub"]


def _statements(deployed: Template, role: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in deployed["Resources"][role]["Properties"].get("Policies", []):
        found.extend(policy["PolicyDocument"]["Statement"])
    return found


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", sorted(PARAMETER_SETS))
def test_function_roles_grant_no_wildcard_action_or_resource(name: str) -> None:
    deployed = _deployed(name)
    roles = [k for k, r in deployed["Resources"].items() if r["Type"] == ROLE]
    assert "DeliverFunctionRole" in roles
    loose = [
        f"{role}: {statement.get('Sid', '')} {statement['Action']} on {statement['Resource']}"
        for role in roles
        if role.endswith("FunctionRole")
        for statement in _statements(deployed, role)
        if any("*" in str(a) for a in _listed(statement["Action"]))
        or any(r == "*" for r in _listed(statement["Resource"]))
    ]
    assert loose == []


def _actions(deployed: Template, role: str) -> set[str]:
    return {
        str(action)
        for statement in _statements(deployed, role)
        for action in _listed(statement["Action"])
    }


def test_the_calls_aws_refused_are_granted() -> None:
    deployed = _deployed("defaults")
    # DeliverFunction's retry waits and re-queueing after a DDM, on the send queue
    deliver = {
        json.dumps(s["Resource"]): set(_listed(s["Action"]))
        for s in _statements(deployed, "DeliverFunctionRole")
    }
    queue = json.dumps({"Fn::GetAtt": ["SendQueue", "Arn"]})
    assert {"sqs:ChangeMessageVisibility", "sqs:SendMessage"} <= deliver[queue]
    # A STOP after a send was accepted: delivery reads the opt-out item, and only reads it
    opt_outs = json.dumps({"Fn::GetAtt": ["OptOutsTable", "Arn"]})
    assert deliver[opt_outs] == {"dynamodb:GetItem"}
    # ReportFunction records STOP/START/HELP and claims and notes their replies
    report = {
        json.dumps(s["Resource"]): set(_listed(s["Action"]))
        for s in _statements(deployed, "ReportFunctionRole")
        if s.get("Sid") == "OptOuts"
    }
    assert report[opt_outs] == {
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }
    # FinalizeFunction removes the renditions of a template deleted while encoding
    assert {"s3:ListBucket", "s3:DeleteObject"} <= _actions(deployed, "FinalizeFunctionRole")
    # The read-only function reads, and nothing else
    assert _actions(deployed, "ViewFunctionRole") == {"dynamodb:GetItem", "s3:GetObject"}
    # PostbackFunction reads accounts and notes its attempts, on those tables only
    postback = {
        json.dumps(s["Resource"]): set(_listed(s["Action"]))
        for s in _statements(deployed, "PostbackFunctionRole")
    }
    assert postback == {
        json.dumps({"Fn::GetAtt": ["AccountsTable", "Arn"]}): {"dynamodb:GetItem"},
        json.dumps({"Fn::GetAtt": ["PostbackAttemptsTable", "Arn"]}): {"dynamodb:UpdateItem"},
    }
    # The outbox relay reads and deletes outbox items (in batches), publishes postbacks
    # and queues accepted sends (SendMessageBatch is sqs:SendMessage), and nothing else
    relay = {
        json.dumps(s["Resource"]): set(_listed(s["Action"]))
        for s in _statements(deployed, "OutboxFunctionRole")
        if s.get("Sid")
    }
    assert relay == {
        json.dumps({"Fn::GetAtt": ["OutboxTable", "Arn"]}): {
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
        },
        json.dumps({"Fn::GetAtt": ["EventBus", "Arn"]}): {"events:PutEvents"},
        queue: {"sqs:SendMessage"},
        json.dumps({"Fn::GetAtt": ["OutboxDLQ", "Arn"]}): {"sqs:SendMessage"},
    }
    # A send does not check its template in its transaction (billed as a write of the
    # whole template item): delivery reads it again. Its one ConditionCheck is the
    # recipient's opt-out item (a few bytes: docs/inbound.md#opt-out-and-help)
    templates = json.dumps({"Fn::GetAtt": ["TemplatesTable", "Arn"]})
    api = {
        json.dumps(s["Resource"]): set(_listed(s["Action"]))
        for s in _statements(deployed, "ApiFunctionRole")
        if s.get("Sid") == "Templates"
    }
    assert "dynamodb:GetItem" in api[templates]
    checks = {
        json.dumps(s["Resource"])
        for s in _statements(deployed, "ApiFunctionRole")
        if "dynamodb:ConditionCheckItem" in _listed(s["Action"])
    }
    assert checks == {json.dumps({"Fn::GetAtt": ["OptOutsTable", "Arn"]})}


def test_the_kms_grants_come_with_the_kms_key_only() -> None:
    with_key = _deployed("public-url-and-kms")
    without = _deployed("defaults")
    for role in ("ApiFunctionRole", "ViewFunctionRole", "DeliverFunctionRole"):
        assert "kms:Decrypt" in _actions(with_key, role)
        assert not any(a.startswith("kms:") for a in _actions(without, role))


def test_device_discovery_waits_on_the_send_queue_not_a_state_machine() -> None:
    # A DDM's wait is a delayed message on the send queue (services/ddm.py): no workflow,
    # and no function may start or resume executions for it.
    deployed = _deployed("defaults")
    machines = [
        name
        for name, resource in deployed["Resources"].items()
        if resource["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    assert machines == ["EncodeStateMachine"]
    for role in ("DeliverFunctionRole", "ReportFunctionRole"):
        assert not any(a.startswith("states:") for a in _actions(deployed, role))
    assert "sqs:SendMessage" in _actions(deployed, "DeliverFunctionRole")
    graph = dependencies(translate(PARAMETER_SETS["defaults"]))
    assert "HttpApi" in graph["DeliverFunction"]


def test_the_translation_is_not_changed_by_the_checks() -> None:
    # translate() hands out copies: a test that edits one leaves the next one intact
    first = translate(PARAMETER_SETS["defaults"])
    pristine = copy.deepcopy(first)
    first["Resources"].clear()
    assert translate(PARAMETER_SETS["defaults"]) == pristine
