"""Create the resources of template.yaml, as the SAM transform translates it, in
whatever AWS boto3 points at.

That is moto's in-process `mock_aws` in tests, or the moto server of the local
runtime (through AWS_ENDPOINT_URL). The translated template (local.translate, the
transform `sam deploy` runs) is the only description of the tables, bucket, queues,
bus, rules, topics and state machines, and of each function's own environment.

    stack = provision("mmsapi-local")
    stack.physical["AccountsTable"]         # "mmsapi-local-AccountsTable"
    stack.function_environment("ApiFunction")  # {"MMS_ACCOUNTS_TABLE": ..., ...}

Resource types that have no local counterpart (functions, roles, the HTTP API, log
groups, alarms, policies) are not created; their names still resolve, so that a
`!GetAtt SomeFunction.Arn` in an environment or a state machine definition gets a
stable fake value.

Why not moto's own CloudFormation: given the translated template it stops at its
first gap (a `!Ref AWS::NoValue` left in a role's policy list, a rule's `!Ref` to an
event bus, no AWS::ApiGatewayV2 or AWS::SMSVOICE), and reports it as a stack stuck
in CREATE_IN_PROGRESS. The few creators below are smaller than the rewrites it needs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

DEFAULT_STACK_NAME = "mmsapi-local"
DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
URL_SUFFIX = "amazonaws.com"
PARTITION = "aws"


class TemplateError(Exception):
    """The template uses something that cannot be resolved or created locally."""


# ---------------------------------------------------------------- reading the template


class _CfnLoader(yaml.SafeLoader):
    """A SafeLoader that knows CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...)."""


# CloudFormation has no timestamps: "2010-09-09" and "2012-10-17" stay strings.
_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise TemplateError(f"unexpected node for !{suffix}")
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_short_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """template.yaml as plain data; short tags become their long form ({"Ref": ...})."""
    with path.open(encoding="utf-8") as handle:
        loaded = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(loaded, dict) or "Resources" not in loaded:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return loaded


@dataclass(frozen=True)
class FunctionSpec:
    """Where a function's code lives, for the local runtime to import it."""

    logical_id: str
    code_uri: Path
    handler: str

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


def function_logical_ids(template_path: Path | None = None) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function of the template, in template order."""
    path = template_path or TEMPLATE_PATH
    template = load_template(path)
    found: dict[str, FunctionSpec] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = {
            **template.get("Globals", {}).get("Function", {}),
            **resource.get("Properties", {}),
        }
        code_uri, handler = props.get("CodeUri"), props.get("Handler")
        if not isinstance(code_uri, str) or not isinstance(handler, str):
            raise TemplateError(f"{logical_id}: CodeUri and Handler must be plain strings")
        found[logical_id] = FunctionSpec(logical_id, (path.parent / code_uri).resolve(), handler)
    return found


# ---------------------------------------------------------------- the stack


_NO_VALUE = object()  # what AWS::NoValue resolves to; dropped from dicts and lists
_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]+)\}")


@dataclass
class Stack:
    """The local copy of the stack: what each logical id became."""

    name: str
    template: dict[str, Any]  # translated: what CloudFormation sees
    template_dir: Path
    parameters: dict[str, Any]
    region: str = DEFAULT_REGION
    account_id: str = ACCOUNT_ID
    # logical id -> what !Ref gives (table/bucket/bus name, queue URL, state machine ARN)
    physical: dict[str, str] = field(default_factory=dict)
    # logical id -> what !GetAtt X.Arn gives
    arns: dict[str, str] = field(default_factory=dict)
    # logical id -> other !GetAtt attributes (QueueName, Name, ...)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    # boto3 clients used while provisioning, one per service (creating one is slow).
    _clients: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # template.yaml itself: where the code is and the HTTP routes (events) are.
    sam_template: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    template_path: Path = TEMPLATE_PATH

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """The translated AWS::Lambda::Function's properties, resolved (Globals applied)."""
        resource = self.template["Resources"].get(logical_id)
        if resource is None or resource.get("Type") != "AWS::Lambda::Function":
            raise TemplateError(f"{logical_id} is not a function of the template")
        props: dict[str, Any] = self.resolve(resource.get("Properties", {}))
        return props

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The function's own environment variables, as Lambda gives them to it."""
        variables = self.function_properties(logical_id).get("Environment", {})
        return {name: _as_text(value) for name, value in variables.get("Variables", {}).items()}

    def function_ids(self) -> list[str]:
        """Every function of the translated template, in template order."""
        return [
            logical_id
            for logical_id, resource in self.template["Resources"].items()
            if resource.get("Type") == "AWS::Lambda::Function"
            and ("Condition" not in resource or self.condition(resource["Condition"]))
        ]

    # ------------------------------------------------------------ intrinsic functions

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function in a piece of the template."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            intrinsic = _INTRINSICS.get(key)
            if intrinsic is not None and (key != "Condition" or isinstance(argument, str)):
                return intrinsic(self, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.resolve(conditions[name]))

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.name,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{self.region}:{self.account_id}"
            f":stack/{self.name}/00000000-0000-0000-0000-000000000000",
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::Partition": PARTITION,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        raise TemplateError(f"cannot resolve !Ref {name} locally (not created yet?)")

    def get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "Arn" and logical_id in self.arns:
            return self.arns[logical_id]
        found = self.attributes.get(logical_id, {}).get(attribute)
        if found is None:
            raise TemplateError(f"cannot resolve !GetAtt {logical_id}.{attribute} locally")
        return found

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            literal, name = match.groups()
            if literal:
                return "${" + name + "}"
            if name in variables:
                return _as_text(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return _as_text(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _fn_if(stack: Stack, argument: list[Any]) -> Any:
    name, when_true, when_false = argument
    return stack.resolve(when_true if stack.condition(name) else when_false)


def _fn_find_in_map(stack: Stack, argument: list[Any]) -> Any:
    name, first, second = (stack.resolve(part) for part in argument)
    return stack.template["Mappings"][name][first][second]


def _fn_get_att(stack: Stack, argument: list[Any] | str) -> str:
    parts = argument.split(".", 1) if isinstance(argument, str) else argument
    return stack.get_att(parts[0], stack.resolve(parts[1]))


_INTRINSICS: dict[str, Callable[[Stack, Any], Any]] = {
    "Ref": lambda stack, name: stack.ref(name),
    "Condition": lambda stack, name: stack.condition(name),  # only {"Condition": "<name>"}
    "Fn::GetAtt": _fn_get_att,
    "Fn::Sub": lambda stack, argument: stack.sub(argument),
    "Fn::If": _fn_if,
    "Fn::Equals": lambda stack, pair: (
        _as_text(stack.resolve(pair[0])) == _as_text(stack.resolve(pair[1]))
    ),
    "Fn::Not": lambda stack, items: not stack.resolve(items[0]),
    "Fn::And": lambda stack, items: all(stack.resolve(item) for item in items),
    "Fn::Or": lambda stack, items: any(stack.resolve(item) for item in items),
    "Fn::Join": lambda stack, argument: str(argument[0]).join(
        _as_text(item) for item in stack.resolve(argument[1])
    ),
    "Fn::Split": lambda stack, argument: stack.resolve(argument[1]).split(argument[0]),
    "Fn::Select": lambda stack, argument: stack.resolve(argument[1])[
        int(stack.resolve(argument[0]))
    ],
    "Fn::FindInMap": _fn_find_in_map,
    "Fn::Base64": lambda stack, text: base64.b64encode(
        _as_text(stack.resolve(text)).encode()
    ).decode(),
    "Fn::GetAZs": lambda stack, _region: [f"{stack.region}{zone}" for zone in "abc"],
}


# ---------------------------------------------------------------- names and ARNs


def _arn(stack: Stack, service: str, resource: str, *, regional: bool = True) -> str:
    region = stack.region if regional else ""
    account = "" if service == "s3" else stack.account_id
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def _bucket_name(stack: Stack, logical_id: str) -> str:
    # S3 rules: 3-63 characters, lowercase letters, digits and hyphens.
    name = re.sub(r"[^a-z0-9-]+", "-", f"{stack.name}-{logical_id}".lower())
    return name[:63].strip("-")


def _explicit_name(stack: Stack, props: Mapping[str, Any], *keys: str) -> str | None:
    """The name the template sets itself (TableName, QueueName, Name...), if any."""
    for key in keys:
        if key in props:
            return _as_text(stack.resolve(props[key]))
    return None


def _name_resource(stack: Stack, logical_id: str, kind: str, props: Mapping[str, Any]) -> None:
    """Fill physical/arns/attributes with the names CloudFormation would have chosen."""
    default = f"{stack.name}-{logical_id}"
    if kind == "AWS::DynamoDB::Table":
        name = _explicit_name(stack, props, "TableName") or default
        stack.physical[logical_id] = name
        stack.arns[logical_id] = _arn(stack, "dynamodb", f"table/{name}")
    elif kind == "AWS::S3::Bucket":
        name = _explicit_name(stack, props, "BucketName") or _bucket_name(stack, logical_id)
        stack.physical[logical_id] = name
        stack.arns[logical_id] = _arn(stack, "s3", name, regional=False)
        stack.attributes[logical_id] = {"DomainName": f"{name}.s3.{URL_SUFFIX}"}
    elif kind == "AWS::SQS::Queue":
        name = _explicit_name(stack, props, "QueueName") or default[:75]
        if _as_text(stack.resolve(props.get("FifoQueue", False))) == "true":
            name = name.removesuffix(".fifo") + ".fifo"
        # The URL depends on the endpoint: physical[...] is set when the queue is created.
        stack.arns[logical_id] = _arn(stack, "sqs", name)
        stack.attributes[logical_id] = {"QueueName": name}
    elif kind == "AWS::Events::EventBus":
        name = _explicit_name(stack, props, "Name") or default
        stack.physical[logical_id] = name
        stack.arns[logical_id] = _arn(stack, "events", f"event-bus/{name}")
        stack.attributes[logical_id] = {"Name": name}
    elif kind == "AWS::Events::Rule":
        name = _explicit_name(stack, props, "Name") or default[:64]
        bus = _bus_name(_as_text(stack.resolve(props.get("EventBusName", "default"))))
        stack.physical[logical_id] = name
        path = f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}"
        stack.arns[logical_id] = _arn(stack, "events", path)
    elif kind == "AWS::StepFunctions::StateMachine":
        name = _explicit_name(stack, props, "StateMachineName") or default
        arn = _arn(stack, "states", f"stateMachine:{name}")
        stack.physical[logical_id] = stack.arns[logical_id] = arn
        stack.attributes[logical_id] = {"Name": name}
    elif kind == "AWS::Lambda::Function":
        name = _explicit_name(stack, props, "FunctionName") or default
        stack.physical[logical_id] = name
        stack.arns[logical_id] = _arn(stack, "lambda", f"function:{name}")
    elif kind == "AWS::IAM::Role":
        name = _explicit_name(stack, props, "RoleName") or default[:64]
        stack.physical[logical_id] = name
        stack.arns[logical_id] = _arn(stack, "iam", f"role/{name}", regional=False)
    elif kind == "AWS::SNS::Topic":
        name = _explicit_name(stack, props, "TopicName") or default[:256]
        stack.physical[logical_id] = stack.arns[logical_id] = _arn(stack, "sns", name)
        stack.attributes[logical_id] = {"TopicName": name}
    elif kind == "AWS::ApiGatewayV2::Api":
        api_id = re.sub(r"[^a-z0-9]", "", logical_id.lower())[:10]
        stack.physical[logical_id] = api_id
        endpoint = f"https://{api_id}.execute-api.{stack.region}.{URL_SUFFIX}"
        stack.attributes[logical_id] = {"ApiEndpoint": endpoint, "ApiId": api_id}
    else:
        # Something never created locally (API, log group, topic...): a name is enough.
        stack.physical[logical_id] = default


def _bus_name(name_or_arn: str) -> str:
    return name_or_arn.rsplit("/", 1)[-1]


# ---------------------------------------------------------------- one creator per type


def _client(stack: Stack, service: str) -> Any:
    # AWS_ENDPOINT_URL (the local runtime's moto server) is honoured by boto3 itself.
    if not stack._clients:
        stack._clients["session"] = boto3.session.Session(region_name=stack.region)
    if service not in stack._clients:
        stack._clients[service] = stack._clients["session"].client(service)
    return stack._clients[service]


def _pick(props: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: props[key] for key in keys if key in props}


def _create_table(stack: Stack, logical_id: str, props: dict[str, Any]) -> None:
    request: dict[str, Any] = {
        "TableName": stack.physical[logical_id],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
        **_pick(props, "ProvisionedThroughput"),
    }
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if kind in props:
            request[kind] = [
                _pick(index, "IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
                for index in props[kind]
            ]
    if "StreamViewType" in props.get("StreamSpecification", {}):
        view = props["StreamSpecification"]["StreamViewType"]
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    dynamodb = _client(stack, "dynamodb")
    existed = False
    try:
        table = dynamodb.create_table(**request)["TableDescription"]
    except dynamodb.exceptions.ResourceInUseException:
        # Already there (a moto server that outlived a restart).
        table, existed = dynamodb.describe_table(TableName=request["TableName"])["Table"], True
    if table.get("LatestStreamArn"):  # !GetAtt <table>.StreamArn (a stream event source)
        stack.attributes.setdefault(logical_id, {})["StreamArn"] = table["LatestStreamArn"]
    if existed:
        return
    ttl = props.get("TimeToLiveSpecification")
    if ttl and _as_text(ttl.get("Enabled")) == "true":
        dynamodb.update_time_to_live(
            TableName=request["TableName"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )


def _create_bucket(stack: Stack, logical_id: str, props: dict[str, Any]) -> None:
    request: dict[str, Any] = {"Bucket": stack.physical[logical_id]}
    if stack.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": stack.region}
    s3 = _client(stack, "s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(**request)


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)


def _create_queue(stack: Stack, logical_id: str, props: dict[str, Any]) -> None:
    attributes = {key: _as_text(value) for key, value in _pick(props, *_QUEUE_ATTRIBUTES).items()}
    if "RedrivePolicy" in props:
        redrive = props["RedrivePolicy"]
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                "maxReceiveCount": int(redrive["maxReceiveCount"]),
            }
        )
    name = stack.attributes[logical_id]["QueueName"]
    sqs = _client(stack, "sqs")
    try:
        url: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except sqs.exceptions.QueueNameExists:
        # Already there with other attributes (parameters changed): bring it up to date.
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes.pop("FifoQueue", None)
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    stack.physical[logical_id] = url
    stack.attributes[logical_id]["QueueUrl"] = url


def _create_event_bus(stack: Stack, logical_id: str, props: dict[str, Any]) -> None:
    events = _client(stack, "events")
    with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
        events.create_event_bus(Name=stack.physical[logical_id])


_TARGET_KEYS = (
    "Id",
    "Arn",
    "RoleArn",
    "Input",
    "InputPath",
    "InputTransformer",
    "SqsParameters",
    "RetryPolicy",
    "DeadLetterConfig",
)


def _create_rule(stack: Stack, logical_id: str, props: dict[str, Any]) -> None:
    name = stack.physical[logical_id]
    bus = _bus_name(_as_text(props.get("EventBusName", "default")))
    request: dict[str, Any] = {
        "Name": name,
        "EventBusName": bus,
        "State": props.get("State", "ENABLED"),
        **_pick(props, "Description", "ScheduleExpression"),
    }
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        request["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    events = _client(stack, "events")
    events.put_rule(**request)
    targets = [_pick(target, *_TARGET_KEYS) for target in props.get("Targets", [])]
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)


def _state_machine_definition(props: Mapping[str, Any]) -> str:
    if "DefinitionString" in props:
        text = _as_text(props["DefinitionString"])
    elif "Definition" in props:
        text = json.dumps(props["Definition"])
    else:
        raise TemplateError("a state machine needs a DefinitionString or a Definition")
    for key, value in props.get("DefinitionSubstitutions", {}).items():
        text = text.replace("${" + key + "}", _as_text(value))
    return text


def _create_state_machine(stack: Stack, logical_id: str, props: dict[str, Any]) -> None:
    name = stack.attributes[logical_id]["Name"]
    definition = _state_machine_definition(props)
    role = props.get("RoleArn")
    if not (isinstance(role, str) and role.startswith("arn:")):
        role = f"arn:{PARTITION}:iam::{stack.account_id}:role/{name}-role"  # never assumed
    kind = props.get("StateMachineType") or "STANDARD"
    sfn = _client(stack, "stepfunctions")
    try:
        sfn.create_state_machine(name=name, definition=definition, roleArn=role, type=kind)
    except sfn.exceptions.StateMachineAlreadyExists:
        sfn.update_state_machine(
            stateMachineArn=stack.arns[logical_id], definition=definition, roleArn=role
        )


def _create_topic(stack: Stack, logical_id: str, props: dict[str, Any]) -> None:
    # Its KMS key is left out: moto ignores key policies (the template gates check them).
    _client(stack, "sns").create_topic(Name=stack.attributes[logical_id]["TopicName"])


_Creator = Callable[[Stack, str, dict[str, Any]], None]

CREATORS: dict[str, _Creator] = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::SQS::Queue": _create_queue,
    "AWS::Events::EventBus": _create_event_bus,
    "AWS::Events::Rule": _create_rule,
    "AWS::StepFunctions::StateMachine": _create_state_machine,
    "AWS::SNS::Topic": _create_topic,
}


# ---------------------------------------------------------------- provisioning


def _references(value: Any) -> Iterator[str]:
    """Logical ids (and parameters) that a piece of the template refers to."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt":
                yield item.split(".", 1)[0] if isinstance(item, str) else item[0]
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else item
                for literal, name in _SUB_VARIABLE.findall(text):
                    if not literal and name not in variables:
                        yield name.split(".", 1)[0]
                yield from _references(variables)
            else:
                yield from _references(item)


# The properties a physical name is made of: naming needs nothing else resolved.
_NAME_KEYS = (
    "BucketName",
    "EventBusName",
    "FifoQueue",
    "FunctionName",
    "Name",
    "QueueName",
    "RoleName",
    "StateMachineName",
    "TableName",
    "TopicName",
)


def _creation_order(
    template: Mapping[str, Any], wanted: list[str], keys: tuple[str, ...] | None = None
) -> list[str]:
    """The resources to create, each after the ones its properties (or only the
    properties `keys`) refer to."""
    resources = template["Resources"]
    graph: dict[str, set[str]] = {}
    for logical_id in wanted:
        resource = resources[logical_id]
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        props = resource.get("Properties", {})
        if keys is not None:
            props = {key: value for key, value in props.items() if key in keys}
        found = set(_references(props)) | set(depends)
        graph[logical_id] = {name for name in found if name in wanted and name != logical_id}
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        # What CloudFormation answers too: it cannot order the resources.
        loop = " -> ".join(exc.args[1])
        raise TemplateError(
            f"circular dependency between resources: {loop} (CloudFormation refuses it too)"
        ) from exc


def _parameter_values(
    template: Mapping[str, Any], overrides: Mapping[str, str] | None
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if overrides and name in overrides:
            value: Any = overrides[name]
        elif "Default" in spec:
            value = spec["Default"]
        elif spec.get("NoEcho"):
            # A secret a deployer must choose (no default on AWS): locally any value does,
            # and the local runtime sets its own where it matters.
            value = f"local-{name.lower()}-not-secret"
        else:
            raise TemplateError(f"parameter {name} has no Default: pass it in `parameters`")
        value = _as_text(value)
        if spec.get("Type") == "CommaDelimitedList" or spec.get("Type", "").startswith("List<"):
            values[name] = [part.strip() for part in value.split(",")] if value else []
        else:
            values[name] = value
    return values


def _session_region() -> str:
    region: str | None = boto3.session.Session().region_name
    return region or DEFAULT_REGION


def provision(
    stack_name: str = DEFAULT_STACK_NAME,
    template_path: Path | None = None,
    *,
    parameters: Mapping[str, str] | None = None,
) -> Stack:
    """Create every table, bucket, queue, bus, rule, topic and state machine of the
    template, translated by the SAM transform as `sam deploy` has it translated.

    `parameters` overrides parameter defaults, like `sam deploy --parameter-overrides`.
    Running it again against the same endpoint leaves existing resources as they are.
    """
    from local.translate import translate  # it imports this module

    path = template_path or TEMPLATE_PATH
    sam_template = load_template(path)
    values = _parameter_values(sam_template, parameters)
    given = {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in values.items()}
    template = translate(given, path)
    stack = Stack(
        name=stack_name,
        template=template,
        template_dir=path.parent,
        parameters=values,
        region=_session_region(),
        sam_template=sam_template,
        template_path=path,
    )
    resources: dict[str, Any] = template["Resources"]
    present = [
        logical_id
        for logical_id, resource in resources.items()
        if "Condition" not in resource or stack.condition(resource["Condition"])
    ]
    # Names first (a rule's ARN needs its bus's name), then creation: both in dependency order.
    for logical_id in _creation_order(template, present, _NAME_KEYS):
        resource = resources[logical_id]
        _name_resource(stack, logical_id, resource["Type"], resource.get("Properties", {}))
    creatable = [name for name in present if resources[name]["Type"] in CREATORS]
    for logical_id in _creation_order(template, creatable):
        resource = resources[logical_id]
        props = stack.resolve(resource.get("Properties", {}))
        try:
            CREATORS[resource["Type"]](stack, logical_id, props)
        except ClientError as exc:
            raise TemplateError(
                f"creating {logical_id} ({resource['Type']}) failed: {exc}"
            ) from exc
    return stack


def check_order(stack: Stack) -> None:
    """Refuse, as CloudFormation does, a template whose resources refer to each other in
    a loop (TemplateError)."""
    resources = stack.template["Resources"]
    present = [
        logical_id
        for logical_id, resource in resources.items()
        if "Condition" not in resource or stack.condition(resource["Condition"])
    ]
    _creation_order(stack.template, present)
