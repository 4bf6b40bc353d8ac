"""Every AWS call checked as AWS would check it: the caller's role, and the parameters.

    gate = AwsGate.for_stack(stack, translate(PARAMETER_SETS["defaults"]))
    gate.install()
    with acting_as("ApiFunction"):
        ...                       # boto3 calls are checked against ApiFunctionRole
    gate.summary()                # {"ApiFunction": 12, ..., "harness": 40, "denied": 0}
    gate.uninstall()

How it works: botocore emits `before-parameter-build` for every call and every
presigned URL, and `before-call` before a real request (which a handler can answer
itself). The gate registers on both for every session created after install(),
so every client the product makes is seen.

- Attribution: `acting_as(...)` if set; else the call stack: the innermost frame
  of a function's handler (functions/<dir>/app.py), else the outermost frame of a
  service entry point (ENTRY_POINTS). Threads started by a ThreadPoolExecutor
  inherit the submitter's function (submit is wrapped while the gate is
  installed). A call with no function is the harness: counted, not checked.
- IAM: local/aws_calls.py gives the actions and resources; local/iam.py decides
  against the function's translated role (inline policies with real names, plus
  the AWS managed policies). A refused call is answered with AWS's own error
  (deny=True) and recorded in `denials`; a presigned URL the role could not use
  raises the same error at signing time.
- Parameters: `max`/`min` length, `pattern` and `enum` of the botocore model,
  which botocore's own validation skips, are checked for every call (harness
  included) and refused with the service's validation error.
- GSI lag: with gsi_lag_seconds > 0, a Query/Scan on an index leaves out items
  written less than that long ago (a written item is hidden whole, not shown in
  its older form: the stricter of the two).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
from botocore import handlers as botocore_handlers
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError
from botocore.model import OperationModel, Shape

from local.aws_calls import Access, UnmappedCallError, Where, required_access
from local.iam import Decision, Role
from local.stack import REPO_ROOT, Stack, function_logical_ids

HARNESS = "harness"

# Service entry points: (module, function) -> the function whose code calls them.
# The outermost one on the stack wins (finalize -> release_waiting_send -> ... stays
# FinalizeFunction's). Admin code (services.accounts) is the harness.
ENTRY_POINTS: dict[tuple[str, str], str] = {
    ("mmsapi.services.api", "handle"): "ApiFunction",
    ("mmsapi.services.save", "save_mms"): "ApiFunction",
    ("mmsapi.services.send", "send_saved"): "ApiFunction",
    ("mmsapi.services.send", "send_new"): "ApiFunction",
    ("mmsapi.services.send", "accept_send"): "ApiFunction",
    ("mmsapi.services.manage", "delete_mms"): "ApiFunction",
    ("mmsapi.services.manage", "list_templates"): "ApiFunction",
    ("mmsapi.services.encode", "start_encoding"): "ApiFunction",
    ("mmsapi.services.view", "render_view"): "ViewFunction",
    ("mmsapi.services.deliver", "deliver"): "DeliverFunction",
    ("mmsapi.services.deliver", "give_up"): "DeliverFunction",
    ("mmsapi.services.ddm", "time_out"): "DeliverFunction",
    ("mmsapi.services.adapt", "adapt_message"): "DeliverFunction",
    ("mmsapi.services.report", "mm7_report"): "ReportFunction",
    ("mmsapi.services.report", "sms_report"): "ReportFunction",
    ("mmsapi.services.report", "sms_event"): "ReportFunction",
    ("mmsapi.services.encode", "transcode_item"): "TranscodeFunction",
    ("mmsapi.services.encode", "finalize"): "FinalizeFunction",
    ("mmsapi.services.encode", "release_waiting_send"): "FinalizeFunction",
    ("mmsapi.services.postback", "handle_event"): "PostbackFunction",
    ("mmsapi.services.postback", "deliver"): "PostbackFunction",
    ("mmsapi.services.sweep", "sweep"): "SweeperFunction",
    ("mmsapi.services.sweep", "settle_send"): "SweeperFunction",
    ("mmsapi.services.sweep", "settle_template"): "SweeperFunction",
}

_ACTING: ContextVar[str | None] = ContextVar("mmsapi_acting_as", default=None)


@contextlib.contextmanager
def acting_as(function_logical_id: str) -> Iterator[None]:
    """Attribute every AWS call made inside (this thread/task) to that function."""
    token = _ACTING.set(function_logical_id)
    try:
        yield
    finally:
        _ACTING.reset(token)


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class CallRecord:
    function: str  # logical id, or HARNESS
    service: str
    operation: str
    accesses: tuple[Access, ...]
    allowed: bool
    refused: tuple[Access, ...] = ()
    presigned: bool = False
    call_site: str = ""

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(access.action for access in self.accesses)

    @property
    def resources(self) -> tuple[str, ...]:
        return tuple(access.resource for access in self.accesses)

    def describe(self) -> str:
        refused = ", ".join(f"{a.action} on {a.resource}" for a in self.refused)
        kind = " (presigned URL)" if self.presigned else ""
        return f"{self.function}: {refused}{kind} ({self.call_site})"


@dataclass
class _CallState:
    """What the gate learnt at before-parameter-build, for before-call and after-call."""

    service: str
    operation: str
    params: dict[str, Any]
    error: tuple[str, str, int] | None = None  # code, message, HTTP status


class _EmptyBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        return iter(())


# ---------------------------------------------------------------- parameter validation

_VALIDATION_CODES = {"s3": "InvalidArgument", "sqs": "InvalidParameterValue"}
_DENIED = {"s3": ("AccessDenied", 403), "sqs": ("AccessDenied", 403)}


@cache
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:  # a Java-only construct (\p{...}): not checked here
        return None


def _length(value: int, metadata: Mapping[str, Any], where: str, errors: list[str]) -> None:
    if "max" in metadata and value > metadata["max"]:
        errors.append(
            f"Value at '{where}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {metadata['max']}"
        )
    if "min" in metadata and value < metadata["min"]:
        errors.append(
            f"Value at '{where}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {metadata['min']}"
        )


def validate(shape: Shape | None, value: Any, where: str = "") -> list[str]:
    """The constraint failures AWS would report for value against shape."""
    errors: list[str] = []
    if shape is not None:
        _validate(shape, value, where, errors, 0)
    return errors


def _validate(shape: Shape, value: Any, where: str, errors: list[str], depth: int) -> None:
    if value is None or depth > 40:
        return
    kind, metadata = shape.type_name, shape.metadata
    if kind == "structure" and isinstance(value, Mapping):
        members = shape.members  # type: ignore[attr-defined]
        for name, member in members.items():
            if name in value:
                path = f"{where}.{name}" if where else name
                _validate(member, value[name], path, errors, depth + 1)
    elif kind == "list" and isinstance(value, list | tuple):
        _length(len(value), metadata, where, errors)
        for index, item in enumerate(value):
            _validate(shape.member, item, f"{where}.{index + 1}", errors, depth + 1)  # type: ignore[attr-defined]
    elif kind == "map" and isinstance(value, Mapping):
        _length(len(value), metadata, where, errors)
        for key, item in value.items():
            _validate(shape.key, key, f"{where}.{key}", errors, depth + 1)  # type: ignore[attr-defined]
            _validate(shape.value, item, f"{where}.{key}", errors, depth + 1)  # type: ignore[attr-defined]
    elif kind == "string" and isinstance(value, str):
        _length(len(value), metadata, where, errors)
        enum = shape.enum  # type: ignore[attr-defined]
        if enum and value not in enum:
            errors.append(
                f"Value '{value[:80]}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        pattern = _pattern(metadata["pattern"]) if "pattern" in metadata else None
        if pattern is not None and pattern.search(value) is None:
            errors.append(
                f"Value at '{where}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {metadata['pattern']}"
            )
    elif kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        if "max" in metadata and value > metadata["max"]:
            errors.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {metadata['max']}"
            )
        if "min" in metadata and value < metadata["min"]:
            errors.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {metadata['min']}"
            )


# ---------------------------------------------------------------- attribution


@cache
def _handler_table(template_path: Path) -> dict[tuple[str, str], str]:
    """(handler file, function name) -> logical id, from the template's CodeUri/Handler."""
    table: dict[tuple[str, str], str] = {}
    for logical_id, spec in function_logical_ids(template_path).items():
        module_file = (spec.code_uri / (spec.module.replace(".", "/") + ".py")).resolve()
        table[(str(module_file), spec.attribute)] = logical_id
    return table


@cache
def _resolved(filename: str) -> str:
    try:
        return str(Path(filename).resolve())
    except OSError:
        return filename


_SKIP_SITE = (str(Path(__file__).resolve()), str(REPO_ROOT / ".venv"))


def _call_site(frame: FrameType | None) -> str:
    """The innermost frame of this repository's code: where the call was made."""
    root = str(REPO_ROOT)
    while frame is not None:
        filename = _resolved(frame.f_code.co_filename)
        if filename.startswith(root) and not filename.startswith(_SKIP_SITE):
            return f"{Path(filename).relative_to(root)}:{frame.f_lineno} {frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


# ---------------------------------------------------------------- the gate

_ACTIVE: AwsGate | None = None
_REGISTERED = False
_LOCK = threading.Lock()
_ORIGINAL_SUBMIT = ThreadPoolExecutor.submit
_CONTEXT_KEY = "mmsapi_aws_gate"


def active_gate() -> AwsGate | None:
    return _ACTIVE


@dataclass
class AwsGate:
    roles: dict[str, Role]  # function logical id -> its role
    principals: dict[str, str]  # function logical id -> assumed-role ARN for messages
    where: Where
    key_schemas: dict[str, tuple[str, ...]] = field(default_factory=dict)  # table -> keys
    template_path: Path = REPO_ROOT / "template.yaml"
    deny: bool = True
    gsi_lag_seconds: float = 0.0
    role_errors: dict[str, str] = field(default_factory=dict)
    calls: list[CallRecord] = field(default_factory=list)
    denials: list[CallRecord] = field(default_factory=list)
    acknowledged: list[CallRecord] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    _writes: dict[tuple[str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    acting_as = staticmethod(acting_as)

    # ------------------------------------------------------------ construction

    @classmethod
    def for_stack(
        cls,
        stack: Stack,
        translated_template: Mapping[str, Any],
        *,
        deny: bool = True,
        gsi_lag_seconds: float = 0.0,
    ) -> AwsGate:
        """A gate for the stack's functions, with the roles of the translated template."""
        resolver = dataclasses.replace(stack, template=dict(translated_template))
        resources: Mapping[str, Any] = translated_template["Resources"]
        roles: dict[str, Role] = {}
        principals: dict[str, str] = {}
        errors: dict[str, str] = {}
        for logical_id, resource in resources.items():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            try:
                role_id = _role_logical_id(resource)
                role_props = resolver.resolve(resources[role_id].get("Properties", {}))
                roles[logical_id] = Role.from_documents(
                    role_id,
                    inline=[p["PolicyDocument"] for p in role_props.get("Policies", [])],
                    managed_arns=role_props.get("ManagedPolicyArns", []),
                )
            except Exception as exc:  # told when the function makes its first call
                errors[logical_id] = f"{type(exc).__name__}: {exc}"
                continue
            function_name = stack.physical.get(logical_id) or f"{stack.name}-{logical_id}"
            role_name = role_props.get("RoleName") or f"{stack.name}-{role_id}"
            principals[logical_id] = (
                f"arn:aws:sts::{stack.account_id}:assumed-role/{role_name}/{function_name}"
            )
        return cls(
            roles=roles,
            principals=principals,
            where=Where(
                region=stack.region,
                account=stack.account_id,
                callback_state_machines=_callback_state_machines(stack, resources),
            ),
            key_schemas=_key_schemas(stack, translated_template),
            template_path=getattr(stack, "template_path", stack.template_dir / "template.yaml"),
            deny=deny,
            gsi_lag_seconds=gsi_lag_seconds,
            role_errors=errors,
        )

    # ------------------------------------------------------------ installing

    def install(self) -> None:
        """Check every call from now on (clients created before keep no hook: reset them)."""
        global _ACTIVE, _REGISTERED
        with _LOCK:
            if not _REGISTERED:
                botocore_handlers.BUILTIN_HANDLERS.extend(_HANDLERS)
                _REGISTERED = True
            default = boto3.DEFAULT_SESSION
            if default is not None:
                for event, handler in _HANDLERS:
                    default._session.register(event, handler, unique_id=f"aws-gate-{event}")
            _ACTIVE = self
            ThreadPoolExecutor.submit = _submit  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        global _ACTIVE
        with _LOCK:
            if _ACTIVE is self:
                _ACTIVE = None
                ThreadPoolExecutor.submit = _ORIGINAL_SUBMIT  # type: ignore[method-assign]

    # ------------------------------------------------------------ results

    def summary(self) -> dict[str, int]:
        counts = Counter(record.function for record in self.calls)
        return {
            **{name: counts[name] for name in sorted(counts) if name != HARNESS},
            HARNESS: counts[HARNESS],
            "denied": len(self.denials),
        }

    def take_denials(self) -> list[CallRecord]:
        """The denials so far, marked as expected (a test that provokes one takes it)."""
        with self._lock:
            taken, self.denials = self.denials, []
            self.acknowledged.extend(taken)
        return taken

    def problems(self) -> list[str]:
        """What must fail the test: unexpected denials and calls without an IAM row."""
        return [record.describe() for record in self.denials] + list(self.unmapped)

    # ------------------------------------------------------------ attribution

    def attribute(self, frame: FrameType | None = None) -> str | None:
        acting = _ACTING.get()
        if acting:
            return acting
        handlers = _handler_table(self.template_path)
        outermost_entry: str | None = None
        frame = frame or sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            found = handlers.get((_resolved(code.co_filename), code.co_name))
            if found is not None:
                return found  # the innermost handler: that function is running
            entry = ENTRY_POINTS.get((frame.f_globals.get("__name__", ""), code.co_name))
            if entry is not None:
                outermost_entry = entry
            frame = frame.f_back
        return outermost_entry

    # ------------------------------------------------------------ the hooks

    def before_parameter_build(
        self, params: dict[str, Any], model: OperationModel, context: dict[str, Any]
    ) -> None:
        service, operation = model.service_model.service_name, model.name
        presigned = bool(context.get("is_presign_request"))
        state = _CallState(service, operation, dict(params))
        context[_CONTEXT_KEY] = state
        frame = sys._getframe(1)
        function = self.attribute(frame)
        record = self._check(function, state, presigned, frame)
        with self._lock:
            self.calls.append(record)
            if not record.allowed:
                self.denials.append(record)
        if state.error is None:
            problems = validate(model.input_shape, params)
            if problems:
                count = len(problems)
                message = f"{count} validation error{'s' * (count > 1)} detected: " + "; ".join(
                    problems
                )
                code = _VALIDATION_CODES.get(service, "ValidationException")
                state.error = (code, message, 400)
                with self._lock:
                    self.invalid.append(f"{service}.{operation}: {message}")
        if presigned and state.error is not None:
            code, message, status = state.error
            raise ClientError(_error_body(code, message, status), operation)  # type: ignore[arg-type]

    def _check(
        self, function: str | None, state: _CallState, presigned: bool, frame: FrameType
    ) -> CallRecord:
        site = _call_site(frame)
        if function is None:
            return CallRecord(HARNESS, state.service, state.operation, (), True, call_site=site)
        role = self.roles.get(function)
        if role is None:
            why = self.role_errors.get(function, "not an AWS::Lambda::Function of the template")
            raise UnmappedCallError(f"{function} has no role the gate can read: {why}")
        try:
            accesses = tuple(
                required_access(state.service, state.operation, state.params, self.where)
            )
        except UnmappedCallError as exc:
            with self._lock:
                self.unmapped.append(f"{function}: {exc} ({site})")
            raise
        refused = tuple(a for a in accesses if not role.decide(a.action, a.resource).allowed)
        record = CallRecord(
            function,
            state.service,
            state.operation,
            accesses,
            allowed=not refused,
            refused=refused,
            presigned=presigned,
            call_site=site,
        )
        if refused and self.deny:
            state.error = self._access_denied(function, role, state.service, refused[0])
        return record

    def _access_denied(
        self, function: str, role: Role, service: str, access: Access
    ) -> tuple[str, str, int]:
        code, status = _DENIED.get(service, ("AccessDeniedException", 400))
        explicit = role.decide(access.action, access.resource) is Decision.EXPLICIT_DENY
        why = (
            "with an explicit deny in an identity-based policy"
            if explicit
            else f"because no identity-based policy allows the {access.action} action"
        )
        message = (
            f"User: {self.principals[function]} is not authorized to perform: "
            f"{access.action} on resource: {access.resource} {why}"
        )
        return code, message, status

    def before_call(self, context: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]] | None:
        state = context.get(_CONTEXT_KEY)
        if not isinstance(state, _CallState) or state.error is None:
            return None
        code, message, status = state.error
        response = AWSResponse("https://aws-gate.local/", status, HTTPHeaders(), _EmptyBody())
        return response, _error_body(code, message, status)

    def after_call(self, http_response: Any, parsed: Any, context: dict[str, Any]) -> None:
        state = context.get(_CONTEXT_KEY)
        if not isinstance(state, _CallState) or state.service != "dynamodb":
            return
        if getattr(http_response, "status_code", 500) >= 300 or not isinstance(parsed, dict):
            return
        if state.operation in _WRITES:
            now = time.monotonic()
            with self._lock:
                for table, key in _written_keys(state.operation, state.params):
                    self._writes[(table, self._key_of(table, key))] = now
        elif (
            state.operation in ("Query", "Scan")
            and state.params.get("IndexName")
            and self.gsi_lag_seconds > 0
        ):
            self._lag_index_answer(str(state.params["TableName"]), parsed)

    # ------------------------------------------------------------ GSI lag

    def _key_of(self, table: str, item: Mapping[str, Any]) -> str:
        names = self.key_schemas.get(table) or tuple(sorted(item))
        return json.dumps({name: item.get(name) for name in names}, sort_keys=True)

    def _lag_index_answer(self, table: str, parsed: dict[str, Any]) -> None:
        cutoff = time.monotonic() - self.gsi_lag_seconds
        with self._lock:
            written = dict(self._writes)
        items = parsed.get("Items", [])
        visible = [
            item for item in items if written.get((table, self._key_of(table, item)), 0) <= cutoff
        ]
        if len(visible) != len(items):
            parsed["Items"] = visible
            parsed["Count"] = len(visible)


_WRITES = ("PutItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem")


def _written_keys(
    operation: str, params: Mapping[str, Any]
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if operation == "PutItem":
        yield params["TableName"], params["Item"]
    elif operation == "UpdateItem":
        yield params["TableName"], params["Key"]
    elif operation == "TransactWriteItems":
        for entry in params["TransactItems"]:
            if "Put" in entry:
                yield entry["Put"]["TableName"], entry["Put"]["Item"]
            elif "Update" in entry:
                yield entry["Update"]["TableName"], entry["Update"]["Key"]
    elif operation == "BatchWriteItem":
        for table, requests in params["RequestItems"].items():
            for request in requests:
                if "PutRequest" in request:
                    yield table, request["PutRequest"]["Item"]


def _error_body(code: str, message: str, status: int) -> dict[str, Any]:
    return {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {
            "RequestId": str(uuid.uuid4()),
            "HTTPStatusCode": status,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        },
    }


def _role_logical_id(function: Mapping[str, Any]) -> str:
    role = function.get("Properties", {}).get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        target = role["Fn::GetAtt"]
        return str(target.split(".", 1)[0] if isinstance(target, str) else target[0])
    raise UnmappedCallError(f"the function's Role is not a role of the template: {role!r}")


def _callback_state_machines(stack: Stack, resources: Mapping[str, Any]) -> tuple[str, ...]:
    found = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        if "waitForTaskToken" in json.dumps(resource.get("Properties", {})):
            arn = stack.arns.get(logical_id)
            if arn:
                found.append(arn)
    return tuple(found)


def _key_schemas(stack: Stack, template: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    schemas: dict[str, tuple[str, ...]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::DynamoDB::Table" and logical_id in stack.physical:
            keys = resource.get("Properties", {}).get("KeySchema", [])
            schemas[stack.physical[logical_id]] = tuple(k["AttributeName"] for k in keys)
    return schemas


# ---------------------------------------------------------------- module-level hooks


def _on_parameter_build(
    params: dict[str, Any], model: OperationModel, context: dict[str, Any], **_: Any
) -> None:
    gate = _ACTIVE
    if gate is not None:
        gate.before_parameter_build(params, model, context)


def _on_call(context: dict[str, Any], **_: Any) -> Any:
    gate = _ACTIVE
    return gate.before_call(context) if gate is not None else None


def _on_after_call(http_response: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
    gate = _ACTIVE
    if gate is not None:
        gate.after_call(http_response, parsed, context)


_HANDLERS: list[tuple[str, Callable[..., Any]]] = [
    ("before-parameter-build", _on_parameter_build),
    ("before-call", _on_call),
    ("after-call", _on_after_call),
]


def _submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """ThreadPoolExecutor.submit that hands the submitter's function to the worker thread."""
    gate = _ACTIVE
    who = gate.attribute(sys._getframe(1)) if gate is not None else None
    if who is None:
        return _ORIGINAL_SUBMIT(self, fn, *args, **kwargs)

    def run(*inner_args: Any, **inner_kwargs: Any) -> Any:
        with acting_as(who):
            return fn(*inner_args, **inner_kwargs)

    return _ORIGINAL_SUBMIT(self, run, *args, **kwargs)
