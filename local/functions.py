"""The template's functions, their real handlers imported and invoked in this process.

    functions = describe_functions(stack)   # every function of template.yaml
    functions["ApiFunction"].load()
    functions["ApiFunction"].invoke(event)  # with a Lambda-like context

All of them share this process, its environment and its Powertools objects: they
each runs one event at a time, like one Lambda execution environment, and their
environments are merged into one.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from local.stack import FunctionSpec, Stack, function_logical_ids

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]

# On Lambda an execution environment runs one event at a time. Here each function
# has one environment: its events take turns, while different functions run at once
# (an encoding must not stall the API). They share one Powertools logger, so a log
# line may now and then carry another function's context keys: a local-only blemish.


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
    handler: Handler | None = None
    load_error: str = ""
    _turn: threading.Lock = field(default_factory=threading.Lock)

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    def load(self) -> None:
        """Import the handler; a failure is kept and told, like a Lambda that cannot start."""
        try:
            self.handler = import_handler(self.spec)
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("%s cannot be loaded:\n%s", self.logical_id, traceback.format_exc())

    def invoke(self, event: Any) -> Any:
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


def import_handler(spec: FunctionSpec) -> Handler:
    """The function's Handler (CodeUri + Handler of the template), imported by path."""
    path = spec.code_uri.joinpath(*spec.module.split(".")).with_suffix(".py")
    if not path.is_file():
        raise ImportError(f"{path} does not exist (CodeUri + Handler of {spec.logical_id})")
    name = f"mmsapi_local_{spec.logical_id}_{spec.module.replace('.', '_')}"
    handler = getattr(import_by_path(name, path), spec.attribute, None)
    if not callable(handler):
        raise ImportError(f"{path} has no callable {spec.attribute!r}")
    return cast(Handler, handler)


def _function_setting(stack: Stack, logical_id: str, key: str, default: Any) -> Any:
    """A function property with Globals.Function applied, resolved."""
    own = stack.template["Resources"][logical_id].get("Properties", {})
    shared = stack.template.get("Globals", {}).get("Function", {})
    return stack.resolve(own.get(key, shared.get(key, default)))


def describe_functions(stack: Stack) -> dict[str, LocalFunction]:
    """Every function of the template, not loaded yet."""
    return {
        logical_id: LocalFunction(
            spec=spec,
            name=stack.physical[logical_id],
            arn=stack.arns[logical_id],
            memory_mb=int(_function_setting(stack, logical_id, "MemorySize", 128)),
            timeout_seconds=float(_function_setting(stack, logical_id, "Timeout", 3)),
        )
        for logical_id, spec in function_logical_ids().items()
    }


def function_environment(stack: Stack) -> dict[str, str]:
    """Every function's environment in one: they all share this process."""
    merged: dict[str, str] = {}
    for logical_id in function_logical_ids():
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
