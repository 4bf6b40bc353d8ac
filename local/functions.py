"""The template's functions, their real handlers imported and invoked in this process.

    functions = describe_functions(stack)   # every function of template.yaml
    functions["ApiFunction"].load()
    functions["ApiFunction"].invoke(event)  # with a Lambda-like context

They share this process, but each invocation sees only its own function's world,
as on Lambda: its environment variables (mmsapi.settings.scoped_settings), its own
warm stores (the handler module's `context`), its name in every log line, and its
role (an AWS gate's `acting_as`, when the runtime installs one).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from local.stack import FunctionSpec, Stack, function_logical_ids

if TYPE_CHECKING:
    from mmsapi.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]

# On Lambda an execution environment runs one event at a time. Here each function
# has one environment: its events take turns, while different functions run at once
# (an encoding must not stall the API).

# The function whose invocation this thread runs: the runtime's log lines name it.
_running: contextvars.ContextVar[str] = contextvars.ContextVar("local_function", default="")


def running_function() -> str:
    """The logical id of the function this code runs for ("" outside invocations)."""
    return _running.get()


@dataclass
class FakeLambdaContext:
    """What Lambda passes as `context` (the attributes Powertools and handlers read)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    _started: float = field(default_factory=time.monotonic)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{time.strftime('%Y/%m/%d')}/[$LATEST]local"

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_seconds - (time.monotonic() - self._started)
        return max(0, int(left * 1000))


@dataclass
class LocalFunction:
    """One AWS::Serverless::Function, its handler imported in this process."""

    spec: FunctionSpec
    name: str
    arn: str
    memory_mb: int
    timeout_seconds: float
    # Its own variables (the translated template's), with the local stand-ins.
    environment: dict[str, str] = field(default_factory=dict)
    # False: it reads this process's environment instead (in-process tests set that).
    isolated: bool = True
    # local.aws_gate.AwsGate: its calls are checked against its role.
    gate: Any = None
    handler: Handler | None = None
    load_error: str = ""
    _turn: threading.Lock = field(default_factory=threading.Lock)
    _settings: Settings | None = None
    _context: Any = None  # mmsapi.services.context.Context, this function's own
    _cold: bool = True

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Run as this function: its settings only, its name, its role."""
        from mmsapi.settings import scoped_settings, settings_from

        if self._settings is None:
            self._settings = settings_from(self.environment)
        token = _running.set(self.logical_id)
        own = scoped_settings(self._settings) if self.isolated else contextlib.nullcontext()
        try:
            with own, self.acting():
                yield
        finally:
            _running.reset(token)

    def acting(self) -> contextlib.AbstractContextManager[Any]:
        """AWS calls made in this block are this function's (its role's)."""
        if self.gate is None:
            return contextlib.nullcontext()
        return cast(contextlib.AbstractContextManager[Any], self.gate.acting_as(self.logical_id))

    def own_context(self) -> Any:
        """The stores this function keeps warm, built from its own settings."""
        if self._context is None:
            from mmsapi.services.context import Context

            self._context = Context()
        return self._context

    def load(self) -> None:
        """Import the handler; a failure is kept and told, like a Lambda that cannot start."""
        try:
            with self.scope():
                module = import_module_of(self.spec)
                self.handler = handler_of(module, self.spec)
                _own_stores(module, self.own_context)
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("%s cannot be loaded:\n%s", self.logical_id, traceback.format_exc())

    def invoke(self, event: Any) -> Any:
        # A context of its own: nothing this invocation sets outlives it.
        return contextvars.copy_context().run(self._invoke, event)

    def _invoke(self, event: Any) -> Any:
        if self.handler is None:
            raise RuntimeError(f"{self.logical_id} could not be loaded: {self.load_error}")
        asked = time.monotonic()
        with self._turn:
            started = time.monotonic()
            if started - asked > 1:
                log.info(
                    "%s waited %.1f s for its previous event: one at a time, as on Lambda",
                    self.logical_id,
                    started - asked,
                )
            context = FakeLambdaContext(self.name, self.arn, self.memory_mb, self.timeout_seconds)
            try:
                with self.scope():
                    self._log_keys(context)
                    return self.handler(event, context)
            finally:
                took = time.monotonic() - started
                if took > self.timeout_seconds:
                    # Lambda would have stopped it; locally nothing can stop a thread.
                    log.warning(
                        "%s ran %.1f s, over its Timeout of %.0f s: on AWS it would have failed",
                        self.logical_id,
                        took,
                        self.timeout_seconds,
                    )

    def _log_keys(self, context: FakeLambdaContext) -> None:
        """This invocation's keys in every Powertools log line, whatever other threads do
        (the keys the handler's inject_lambda_context sets are shared by all functions)."""
        from mmsapi.observability import logger

        logger.thread_safe_append_keys(
            service=self.environment.get("POWERTOOLS_SERVICE_NAME", "service_undefined"),
            cold_start=self._cold,
            function_name=self.name,
            function_memory_size=self.memory_mb,
            function_arn=self.arn,
            function_request_id=context.aws_request_id,
        )
        self._cold = False

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "memory_mb": self.memory_mb,
            "timeout_seconds": self.timeout_seconds,
        }


def import_by_path(name: str, path: Path) -> ModuleType:
    """The Python file at path as the module `name`, imported once.

    Every function's module is called `app`: importing them by their plain name
    would make the second one the first. A module that fails to import is
    forgotten, so that the next attempt tries again.
    """
    module = sys.modules.get(name)
    if module is not None:
        return module
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_module_of(spec: FunctionSpec) -> ModuleType:
    """The module of the function's Handler (CodeUri + Handler of the template)."""
    path = spec.code_uri.joinpath(*spec.module.split(".")).with_suffix(".py")
    if not path.is_file():
        raise ImportError(f"{path} does not exist (CodeUri + Handler of {spec.logical_id})")
    return import_by_path(f"mmsapi_local_{spec.logical_id}_{spec.module.replace('.', '_')}", path)


def handler_of(module: ModuleType, spec: FunctionSpec) -> Handler:
    handler = getattr(module, spec.attribute, None)
    if not callable(handler):
        raise ImportError(f"{module.__file__} has no callable {spec.attribute!r}")
    return cast(Handler, handler)


def import_handler(spec: FunctionSpec) -> Handler:
    """The function's Handler, imported by path."""
    return handler_of(import_module_of(spec), spec)


def threads_inherit_the_invocation() -> Callable[[], None]:
    """Make ThreadPoolExecutor workers run in the submitter's context (its function's
    settings and name), as they would in that function's own process; returns undo."""
    from concurrent.futures import ThreadPoolExecutor

    previous = ThreadPoolExecutor.submit

    def submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kw: Any) -> Any:
        return previous(self, contextvars.copy_context().run, fn, *args, **kw)

    ThreadPoolExecutor.submit = submit  # type: ignore[method-assign,assignment]

    def undo() -> None:
        ThreadPoolExecutor.submit = previous  # type: ignore[method-assign]

    return undo


def _own_stores(module: ModuleType, own: Callable[[], Any]) -> None:
    """Give a handler module its function's own stores: on Lambda each function's
    process builds them from its own environment, here they would be shared."""
    from mmsapi.services import context as context_module

    if getattr(module, "context", None) is context_module.context:
        module.context = own  # type: ignore[attr-defined]


def local_environment(
    own: Mapping[str, str], sms_url: str = "", postback_inbox: str = ""
) -> dict[str, str]:
    """A function's own variables, with local stand-ins for what only AWS has."""
    env = dict(own)
    if postback_inbox and "MMS_POSTBACK_TIMEOUT" in env:
        # The postback sender: accounts without a URL post to the runtime's inbox.
        env["MMS_LOCAL_POSTBACK_INBOX"] = postback_inbox
    # Only the local runtime fetches media from loopback (pytest-httpserver, http.server).
    env["MMS_ALLOW_LOOPBACK_MEDIA"] = "true"
    if "MMS_FFMPEG_DIR" in env:
        env["MMS_FFMPEG_DIR"] = ""  # /opt/bin is the ffmpeg layer; locally the package's
    if sms_url and "MMS_SMS_CONFIGURATION_SET" in env:
        env["MMS_SMS_URL"] = sms_url  # End User Messaging: the simulated SMS gateway
    return env


def describe_functions(
    stack: Stack,
    *,
    sms_url: str = "",
    postback_inbox: str = "",
    gate: Any = None,
    isolated: bool = False,
) -> dict[str, LocalFunction]:
    """Every function of the template, not loaded yet. `isolated`: each reads its own
    environment only (the local runtime); else this process's (in-process tests)."""
    found: dict[str, LocalFunction] = {}
    specs = function_logical_ids(stack.template_path)
    for logical_id in stack.function_ids():
        props = stack.function_properties(logical_id)
        found[logical_id] = LocalFunction(
            spec=specs[logical_id],
            name=stack.physical[logical_id],
            arn=stack.arns[logical_id],
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_seconds=float(props.get("Timeout", 3)),
            environment=local_environment(
                stack.function_environment(logical_id), sms_url, postback_inbox
            ),
            isolated=isolated,
            gate=gate,
        )
    return found


def function_environment(stack: Stack) -> dict[str, str]:
    """Every function's environment in one, for tests that call the services directly
    in one process (the local runtime gives each function its own instead)."""
    merged: dict[str, str] = {}
    for logical_id in stack.function_ids():
        for name, value in stack.function_environment(logical_id).items():
            if name in merged and merged[name] != value:
                log.warning(
                    "%s: %s=%r differs from another function's %r; locally one value is used",
                    logical_id,
                    name,
                    value,
                    merged[name],
                )
            merged.setdefault(name, value)
    merged.update(
        {
            # Only the local runtime fetches media from loopback (pytest-httpserver, http.server).
            "MMS_ALLOW_LOOPBACK_MEDIA": "true",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_NAMESPACE": "mmsapi-local",
            # /opt/bin is the ffmpeg layer on Lambda; locally the same package's binaries.
            "MMS_FFMPEG_DIR": "",
        }
    )
    return merged


def reset_product_caches() -> None:
    """Forget settings, clients and stores read before the environment was complete."""
    from mmsapi.services import context as context_module
    from mmsapi.settings import get_settings
    from mmsapi.store import aws

    get_settings.cache_clear()
    aws.reset()
    context_module.reset()


def by_name_and_arn(functions: dict[str, LocalFunction]) -> dict[str, LocalFunction]:
    """Functions under every name a caller may use: logical id, function name, ARN."""
    found: dict[str, LocalFunction] = {}
    for logical_id, function in functions.items():
        found[logical_id] = found[function.name] = found[function.arn] = function
    return found
