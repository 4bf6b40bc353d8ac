"""Where the tables are: the local runtime's embedded AWS, or a deployed stack.

A deployed stack is found by name through CloudFormation: its outputs name the tables
(a stack made before an output existed is looked up by the resource's logical id). The
local runtime writes <MMS_LOCAL_DATA_DIR>/runtime.json while it runs: its AWS endpoint
and the functions' environments.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mmsapi.settings import Settings, get_settings, settings_from
from mmsapi.store import aws

# Stack output -> the setting the stores read it from. The logical id is the output's
# name without "Name" (AccountsTableName -> AccountsTable).
OUTPUTS: Final[dict[str, str]] = {
    "AccountsTableName": "MMS_ACCOUNTS_TABLE",
    "ApiKeysTableName": "MMS_API_KEYS_TABLE",
    "SendsTableName": "MMS_SENDS_TABLE",
    "CarrierMessagesTableName": "MMS_CARRIER_MESSAGES_TABLE",
    "TemplatesTableName": "MMS_TEMPLATES_TABLE",
    "OutboxTableName": "MMS_OUTBOX_TABLE",
    "PostbackAttemptsTableName": "MMS_POSTBACK_ATTEMPTS_TABLE",
    "OptOutsTableName": "MMS_OPT_OUTS_TABLE",
}
# The local runtime's embedded AWS (moto) takes any credentials, in its one region.
LOCAL_SESSION: Final = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


class TargetError(Exception):
    """The stack or the local runtime cannot be reached; the message says what to do."""


@dataclass(frozen=True)
class Target:
    """What the admin works on: a description, and the settings naming its tables."""

    where: str
    settings: Settings


def connect(stack: str | None, region: str | None) -> Target:
    """Point this process's AWS clients at the stack (or the local runtime) and return
    the settings naming its tables."""
    if stack:
        return _deployed(stack, region)
    return _local()


def _deployed(stack: str, region: str | None) -> Target:
    session = {"region_name": region} if region else {}
    try:
        cloudformation = boto3.session.Session(**session).client("cloudformation")  # type: ignore[arg-type]
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        missing = [name for name in OUTPUTS if name not in outputs]
        if missing:
            outputs.update(_resources(cloudformation, stack, missing))
    except (ClientError, BotoCoreError) as exc:
        raise TargetError(
            f"stack {stack!r}: {exc} (AWS credentials and region as for the AWS CLI: "
            "AWS_PROFILE, AWS_REGION or --region)"
        ) from None
    if "AccountsTableName" not in outputs or "ApiKeysTableName" not in outputs:
        raise TargetError(f"stack {stack!r} has no accounts or API keys table: not an mmsapi stack")
    aws.use(**session)
    variables = {OUTPUTS[name]: value for name, value in outputs.items() if name in OUTPUTS}
    where = f"stack {stack} ({cloudformation.meta.region_name})"
    return Target(where, settings_from(variables))


def _resources(cloudformation: Any, stack: str, outputs: list[str]) -> dict[str, str]:
    """Physical names of the tables that have no output (stacks made before it)."""
    logical = {name.removesuffix("Name"): name for name in outputs}
    found: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for resource in page["StackResourceSummaries"]:
            name = logical.get(resource["LogicalResourceId"])
            if name and resource.get("PhysicalResourceId"):
                found[name] = resource["PhysicalResourceId"]
    return found


def _local() -> Target:
    state_file = Path(get_settings().local_data_dir or ".local-data") / "runtime.json"
    if not state_file.exists():
        raise TargetError(
            f"the local runtime is not running ({state_file} does not exist): start it with "
            "`make local`, or name a deployed stack with --stack NAME"
        )
    state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
    endpoint = str(state["aws_endpoint"])
    if not _answers(endpoint):
        raise TargetError(
            f"the local runtime is not running: nothing answers at {endpoint} ({state_file} "
            "is left from an earlier run); start it with `make local`"
        )
    # Every function's variables: the admin reads tables that no one function has all of.
    variables: dict[str, str] = {}
    for function in state.get("functions", {}).values():
        variables.update(function.get("environment", {}))
    variables.update(state["environment"])
    aws.use(endpoint_url=endpoint, **LOCAL_SESSION)
    wanted = set(OUTPUTS.values())
    return Target(
        f"local runtime ({endpoint})",
        settings_from({k: v for k, v in variables.items() if k in wanted}),
    )


def _answers(endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 2).close()
    except OSError:
        return False
    return True
