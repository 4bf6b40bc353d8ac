"""Step Functions that really run: moto's ASL interpreter, with Lambda tasks bridged
to the real handlers of this process (moto's own Lambda would need Docker).

    enable_execution()
    install_lambda_bridge(lambda arn, event: functions_by_arn[arn].invoke(event))
"""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Callable
from typing import Any

from moto.core.config import default_user_config
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

log = logging.getLogger(__name__)

Invoke = Callable[[str, Any], Any]


def enable_execution() -> None:
    """Make moto execute state machine definitions instead of only recording executions."""
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


class LambdaBridge:
    """Answers the interpreter's `lambda.invoke` calls with a local handler's result,
    shaped like Lambda's: a JSON payload, or FunctionError with errorType/errorMessage."""

    def __init__(self, invoke: Invoke) -> None:
        self._invoke = invoke

    def invoke(self, **parameters: Any) -> dict[str, Any]:
        name = str(parameters["FunctionName"])
        raw = parameters.get("Payload") or b"{}"
        event = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        try:
            result = self._invoke(name, event)
        except Exception as exc:
            log.warning("%s failed in a state machine task:\n%s", name, traceback.format_exc())
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _body(error)}
        return {"StatusCode": 200, "Payload": _body(result)}


def _body(value: Any) -> io.BytesIO:
    return io.BytesIO(json.dumps(value).encode("utf-8"))


def install_lambda_bridge(invoke: Invoke) -> None:
    """Route every Lambda task of every execution to `invoke(function_arn_or_name, event)`."""
    bridge = LambdaBridge(invoke)

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if service == "lambda":
            return bridge
        return boto_client_for(region, service, state_credentials)

    # moto's interpreter looks its client factory up in this module at call time.
    setattr(lambda_eval_utils, "boto_client_for", client_for)  # noqa: B010
