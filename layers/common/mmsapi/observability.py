"""Powertools Logger, Tracer and Metrics: one instance each for every handler, and the ids
of the message at hand on every log line, X-Ray annotation and per-code metric.

`message_context(...)` opens a scope (a handler's invocation, one record of a batch) and
`tag(...)` adds the ids learnt inside it (outside any scope it keeps nothing): every log
line written in the scope carries account, action, mms_id, send_id, tracking_id and
client_reference (those known), and when tracing is active they are X-Ray annotations
too. Leaving the scope restores what was there before, so no id leaks into the next
record or invocation. A ContextVar holds them: concurrent records (asyncio tasks,
threads started with their context) keep apart.

When tracing is active, each scope is also an X-Ray subsegment ("## <action>") that
carries its own ids as annotations: every record of a batch gets its own.

Tracing is active on Lambda unless POWERTOOLS_TRACE_DISABLED. The Tracer's provider is
then mmsapi.xray (X-Ray's daemon protocol, no X-Ray SDK: about 100 ms less CPU at each
cold start); elsewhere it records nothing and nothing is imported for it.
"""

from __future__ import annotations

import json
import numbers
import sys
import threading
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.base import SingleMetric
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from mmsapi.redact import RedactingFormatter
from mmsapi.scope import bound
from mmsapi.settings import get_settings
from mmsapi.tracking import parse_tracking_id, tracking_id

# The ids that let an operator follow one message, in the order a log line shows them.
ID_KEYS: Final = ("account", "action", "mms_id", "send_id", "tracking_id", "client_reference")

# The libraries whose calls become X-Ray subsegments (urllib3 sits on httplib).
PATCHED: Final = ("botocore", "httplib")

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
# None: no scope is open, and tag() keeps nothing (a service called outside any handler,
# by a test or a tool, must not leave ids behind for whatever runs next).
_ids: ContextVar[Mapping[str, str] | None] = ContextVar("mmsapi_message_ids", default=None)
# The scope's own subsegment when tracing (tag(action=...) names it after the action).
_scope_segment: ContextVar[BaseSegment | None] = ContextVar("mmsapi_scope_segment", default=None)


# Lambda context keys Powertools puts on every line that the log group already says
# (the function, its version) or the REPORT line does (memory): ~140 bytes a line.
_SAID_ELSEWHERE: Final = frozenset({"function_arn", "function_memory_size"})


class _MessageFormatter(RedactingFormatter):
    """Powertools' JSON line (redacted), with the ids of the message at hand."""

    def serialize(self, log: LogRecord) -> str:
        ids = _ids.get()
        # A key the line gives itself (extra=...) wins over the scope's.
        line = {k: v for k, v in log.items() if k not in _SAID_ELSEWHERE}
        if ids:
            line.update({k: v for k, v in ids.items() if k not in line})
        return super().serialize(line)


class _NoSegment(BaseSegment):
    """What an untraced provider hands out: takes everything, records nothing."""

    def close(self, end_time: int | None = None) -> None:
        return None

    def add_subsegment(self, subsegment: Any) -> None:
        return None

    def remove_subsegment(self, subsegment: Any) -> None:
        return None

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        return None


class _Untraced(BaseProvider):
    """The Tracer's provider where tracing is off: no X-Ray SDK import (about 150 ms)."""

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _NoSegment()

    def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> Any:
        raise NotImplementedError("no async subsegments in this code base")

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def patch(self, modules: Any) -> None:
        return None

    def patch_all(self) -> None:
        return None


def configure_tracing(enabled: bool | None = None) -> None:
    """Give the Tracer its provider: X-Ray's (mmsapi.xray) where tracing is active, else
    one that records nothing. None: Powertools' own rule (on Lambda, not SAM local, unless
    POWERTOOLS_TRACE_DISABLED). Run at import; tests call it to switch tracing on."""
    active = not Tracer._is_tracer_disabled() if enabled is None else enabled
    if not active:
        if "mmsapi.xray" in sys.modules:  # switched off again: the hooks record nothing
            sys.modules["mmsapi.xray"].stop_recording()
        tracer.provider, tracer.disabled = _Untraced(), True
        return
    from mmsapi import xray  # only here: its hooks and socket are tracing's alone

    provider = xray.XRayProvider(xray.Emitter(xray.daemon_address()))
    tracer.provider, tracer.disabled = provider, False
    tracer.patch(PATCHED)


# Every line redacted as a whole: no API key, secret or view token reaches the logs.
logger = Logger(logger_formatter=_MessageFormatter())
# Built with a provider and disabled=False so that Powertools never touches the X-Ray SDK
# (its disabled path imports aws_xray_sdk to switch it off); configure_tracing decides.
tracer = Tracer(provider=_Untraced(), disabled=False, auto_patch=False)
configure_tracing()
metrics = Metrics(namespace=get_settings().metrics_namespace)


def current_ids() -> dict[str, str]:
    """The ids of the message at hand (for tests and for lines built by hand)."""
    return dict(_ids.get() or {})


def tag(**ids: object) -> None:
    """Add ids to the current scope (empty values are left out); annotate the trace."""
    given = {k: str(v) for k, v in ids.items() if v is not None and v != ""}
    current = _ids.get()
    if not given or current is None:
        return
    _ids.set(MappingProxyType({**current, **given}))
    if not tracer.disabled:
        # The current subsegment: the scope's own, or one opened inside it.
        for key, value in given.items():
            tracer.put_annotation(key=key, value=value)
        segment = _scope_segment.get()
        rename = getattr(segment, "rename", None)
        if "action" in given and callable(rename):
            rename(_scope_name(given["action"]))


def _scope_name(action: object) -> str:
    return f"## {action or 'message'}"


@contextmanager
def message_context(**ids: object) -> Iterator[None]:
    """A scope that starts empty (a handler's invocation, one record of a batch) with
    these ids; they, and any tagged inside, go when it ends. When tracing, the scope is
    a subsegment of its own, annotated with its ids (not the batch's last record's)."""
    token = _ids.set(_EMPTY)
    try:
        if tracer.disabled:
            tag(**ids)
            yield
            return
        name = _scope_name(ids.get("action"))
        with tracer.provider.in_subsegment(name=name) as segment, bound(_scope_segment, segment):
            tag(**ids)
            yield
    finally:
        _ids.reset(token)


def send_ids(send: Any) -> dict[str, object]:
    """The ids of a send (models.Send)."""
    return {
        "account": send.account_id,
        "mms_id": send.mms_id,
        "send_id": send.send_id,
        "tracking_id": tracking_id(send.send_id),
        "client_reference": send.client_reference,
    }


def template_ids(template: Any) -> dict[str, object]:
    """The ids of a template (models.Template)."""
    return {
        "account": template.account_id,
        "mms_id": template.mms_id,
        "client_reference": template.client_reference,
    }


def encoding_ids(event: Mapping[str, Any]) -> dict[str, object]:
    """The ids of an encoding workflow's task input (services/encode.encoding_input)."""
    single = event.get("single_send_id")
    send_id = int(single) if isinstance(single, int | str) and str(single).isdigit() else None
    return {
        "account": event.get("account_id"),
        "mms_id": event.get("mms_id"),
        "send_id": send_id,
        "tracking_id": tracking_id(send_id) if send_id is not None else None,
    }


def postback_ids(detail: Mapping[str, Any]) -> dict[str, object]:
    """The ids a postback's detail names ({"account_id", "fields": {...}})."""
    fields = detail.get("fields")
    fields = fields if isinstance(fields, Mapping) else {}
    tracking = str(fields.get("tracking-id") or "")
    return {
        "account": detail.get("account_id"),
        "mms_id": fields.get("mms-id"),
        "send_id": parse_tracking_id(tracking) if tracking else None,
        "tracking_id": tracking,
        "client_reference": fields.get("client-reference"),
    }


def count(name: str, **dimensions: str) -> None:
    """One data point of `name` with its own dimensions (CloudWatch EMF, printed at once):
    per action and per code, never per account (each dimension set is a billed metric)."""
    _emit(name, 1, dimensions)


def tally(name: str, **dimensions: str) -> None:
    """count(), printed by flush_tallies() at the end of the invocation with the other
    points of the same name and dimensions as one document of their sum: a batch's
    postbacks are one EMF line per code, not one each (~250 bytes of logs apiece).
    The metrics read by Sum (the alarms do) are the same."""
    key = (name, tuple(dimensions.items()))
    with _tallies_lock:
        _tallies[key] = _tallies.get(key, 0) + 1


def flush_tallies() -> None:
    """Print what tally() counted (handlers call it when their invocation ends)."""
    with _tallies_lock:
        counted = list(_tallies.items())
        _tallies.clear()
    for (name, dimensions), value in counted:
        _emit(name, value, dict(dimensions))


@contextmanager
def tallied() -> Iterator[None]:
    """An invocation whose tallies are printed when it ends, however it ends."""
    try:
        yield
    finally:
        flush_tallies()


_tallies: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
_tallies_lock = threading.Lock()


def _emit(name: str, value: int, dimensions: Mapping[str, str]) -> None:
    metric = SingleMetric(namespace=get_settings().metrics_namespace)
    metric.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for key, dimension in dimensions.items():
        metric.add_dimension(name=key, value=dimension or "none")
    line = json.dumps(metric.serialize_metric_set(), separators=(",", ":"))
    # One write per document, as a log line is: Powertools' single_metric print()s the
    # text and its newline apart, and a line logged by another thread between the two
    # (PostbackFunction delivers a batch's records in threads) broke both documents.
    sys.stdout.write(line + "\n")
