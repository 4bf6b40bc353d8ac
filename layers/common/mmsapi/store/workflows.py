"""Step Functions executions: started once per template, by a name derived from it."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws


class Workflow:
    """One state machine, whose executions are named after what they work on."""

    setting = "MMS_ENCODE_STATE_MACHINE_ARN"

    def __init__(self, state_machine_arn: str) -> None:
        self.arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any]) -> None:
        """Start an execution; a second start with the same name is a no-op.

        The name makes a retried save unable to start two encodings of one template.
        """
        if not self.arn:
            raise DomainError(
                "no encode state machine is configured (MMS_ENCODE_STATE_MACHINE_ARN)"
            )
        try:
            aws.stepfunctions().start_execution(
                stateMachineArn=self.arn, name=name, input=json.dumps(payload)
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return
            raise DomainError(f"could not start encoding: {exc}") from exc


class EncodeWorkflow(Workflow):
    """Encodes the audio and video of a template (statemachine/encode.asl.json)."""

    def __init__(self, state_machine_arn: str | None = None) -> None:
        super().__init__(state_machine_arn or get_settings().encode_state_machine_arn)
