"""Fault injection: a chosen fraction of the functions' AWS calls fail as AWS fails.

    plan = FaultPlan(0.1, seed=7)        # 10% of attempts: throttled, 5xx or timed out
    plan.install()                       # needs the AWS gate installed (attribution)
    ...
    plan.figures()                       # {"attempts": 812, "throttle": 27, "5xx": 30, ...}
    plan.uninstall()

Where: each HTTP attempt, inside botocore's retry loop (Endpoint._do_get_response
returns (response, None) or (None, exception) per attempt, and the standard retry
mode decides on that). So an injected throttle or 5xx is retried by botocore like a
real one, and the product sees what AWS gives after its retries. The `before-send`
event is not enough: every handler of it runs (moto's stub included), so a fault
answered there would still execute the call. `before-call` is earlier still: an
answer there skips the retry loop altogether.

What: "throttle" answers the service's throttling error (HTTP 400, or S3's 503
SlowDown), "5xx" an InternalServerError 500 or ServiceUnavailable 503, "timeout" a
ConnectTimeoutError (the request never left) or a ReadTimeoutError (it did, and was
executed: only the answer is lost, as with a real read timeout).

Who: only calls attributed to a function of the template (the gate's attribution);
the harness (tests, the local runtime's pollers) is never faulted. Deterministic:
one seeded generator, drawn once per attempt, so a single-threaded run repeats
exactly.
"""

from __future__ import annotations

import random
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.endpoint import Endpoint
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from local.aws_gate import active_gate

KINDS: Final = ("throttle", "5xx", "timeout")

# service -> (throttling code, HTTP status). Query-protocol and JSON services alike.
_THROTTLE: Final[dict[str, tuple[str, int]]] = {
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "s3": ("SlowDown", 503),
    "sqs": ("ThrottlingException", 400),
    "events": ("ThrottlingException", 400),
    "stepfunctions": ("ThrottlingException", 400),
    "pinpoint-sms-voice-v2": ("ThrottlingException", 429),
}
_SERVER: Final = (("InternalServerError", 500), ("ServiceUnavailable", 503))

_ORIGINAL: Final = getattr(Endpoint, "_do_get_response")  # noqa: B009 (stubs lack it)
_ACTIVE: FaultPlan | None = None


@dataclass
class FaultPlan:
    """Fail `fraction` of the functions' AWS attempts, with `kinds`, on `services` (None:
    every service)."""

    fraction: float
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    services: frozenset[str] | None = None
    attempts: int = 0
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, service)
    _random: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not 0 <= self.fraction <= 1:
            raise ValueError(f"a fault plan needs kinds in {KINDS} and 0 <= fraction <= 1")
        self._random = random.Random(self.seed)  # noqa: S311 (repeatable, not secret)

    @classmethod
    def from_env(cls, value: str, seed: int = 0) -> FaultPlan | None:
        """MMS_LOCAL_AWS_FAULTS=0.1 (a fraction); empty or 0: no plan."""
        fraction = float(value) if value.strip() else 0.0
        return cls(fraction, seed) if fraction > 0 else None

    # ------------------------------------------------------------ installing

    def install(self) -> None:
        global _ACTIVE
        _ACTIVE = self
        setattr(Endpoint, "_do_get_response", _do_get_response)  # noqa: B010

    def uninstall(self) -> None:
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None
            setattr(Endpoint, "_do_get_response", _ORIGINAL)  # noqa: B010

    # ------------------------------------------------------------ results

    def total(self) -> int:
        return sum(self.injected.values())

    def figures(self) -> dict[str, int]:
        """Attempts seen, and faults injected per kind and per service."""
        out = {"attempts": self.attempts, "faults": self.total()}
        for (kind, service), count in sorted(self.injected.items()):
            out[kind] = out.get(kind, 0) + count
            out[f"{kind} {service}"] = count
        return out

    # ------------------------------------------------------------ deciding

    def draw(self, service: str) -> tuple[str, float] | None:
        """The fault for this attempt (kind, a second draw for its variant), or None."""
        if self.services is not None and service not in self.services:
            return None
        with self._lock:
            self.attempts += 1
            if self._random.random() >= self.fraction:
                return None
            kind = self.kinds[self._random.randrange(len(self.kinds))]
            variant = self._random.random()
            self.injected[(kind, service)] += 1
        return kind, variant


def active_plan() -> FaultPlan | None:
    return _ACTIVE


def _error_response(service: str, code: str, status: int) -> tuple[AWSResponse, dict[str, Any]]:
    request_id = str(uuid.uuid4())
    http = AWSResponse("https://aws-faults.local/", status, HTTPHeaders(), _Empty())
    parsed = {
        "Error": {"Code": code, "Message": f"injected fault ({service})"},
        "ResponseMetadata": {
            "RequestId": request_id,
            "HTTPStatusCode": status,
            "HTTPHeaders": {},
        },
    }
    return http, parsed


class _Empty:
    def stream(self, **_: Any) -> Iterator[bytes]:
        return iter(())


def _do_get_response(
    self: Endpoint, request: Any, operation_model: Any, context: dict[str, Any]
) -> Any:
    plan, gate = _ACTIVE, active_gate()
    if plan is None or gate is None or gate.attribute(sys._getframe(1)) is None:
        return _ORIGINAL(self, request, operation_model, context)
    service = operation_model.service_model.service_name
    fault = plan.draw(service)
    if fault is None:
        return _ORIGINAL(self, request, operation_model, context)
    kind, variant = fault
    if kind == "throttle":
        code, status = _THROTTLE.get(service, ("ThrottlingException", 400))
        return _error_response(service, code, status), None
    if kind == "5xx":
        code, status = _SERVER[int(variant * len(_SERVER))]
        return _error_response(service, code, status), None
    if variant < 0.5:  # the request never left
        return None, ConnectTimeoutError(endpoint_url=request.url)
    _ORIGINAL(self, request, operation_model, context)  # it ran; its answer is lost
    return None, ReadTimeoutError(endpoint_url=request.url)
