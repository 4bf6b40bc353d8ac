"""Cold start (issue 11, goal 1): each figure next to its goal, as a ratio to bare boto3.

(a) Import: the CPU time (time.process_time in the child) of importing each function's
    handler module against a bare `import boto3`, median of 7 fresh interpreters, in
    the environment the handler gets on Lambda: tracing on (a sampled _X_AMZN_TRACE_ID,
    an X-Ray daemon address nobody listens on) plus that function's own variables from
    the translated template. Goal: at most 1.3x.
(b) First answer: a fresh interpreter imports functions/api/app.py and answers one
    text-only saveMMS (events/api/save-text-current.json) against the emulated AWS (a
    moto server this benchmark starts and provisions from template.yaml), against a
    fresh interpreter that creates the same clients and makes the same AWS calls
    (recorded from the handler, replayed) with bare boto3. Wall and CPU time, median
    of 7 each. Goal: at most 1.5x.

Timing starts at the child's first statement: interpreter start-up is the same for both.
Run: .venv/bin/python -m benchmarks.cold_start
"""

from __future__ import annotations

import json
import logging
import os
import socket
import statistics
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from benchmarks.goals import Figure, record

ROOT = Path(__file__).resolve().parent.parent
COMMON = ROOT / "layers" / "common"
EVENT = ROOT / "events" / "api" / "save-text-current.json"
RUNS: Final = 7
IMPORT_GOAL: Final = 1.3
FIRST_ANSWER_GOAL: Final = 1.5
REGION: Final = "us-east-1"
SAMPLE_KEY: Final = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"  # the key of events/api/*.json

# A child prints one JSON line: {"cpu": ms, "wall": ms, ...}.
IMPORT_PROBE = """
import time
cpu, wall = time.process_time(), time.perf_counter()
{statement}
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
import json
print(json.dumps({{"cpu": cpu * 1000, "wall": wall * 1000}}))
"""

# Lambda's context, as much of it as Powertools and the handler read (defined before the
# clock starts: on Lambda the runtime gives it).
_CONTEXT = """
class LambdaContext:
    function_name = "ApiFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    memory_limit_in_mb = 512
    aws_request_id = "0b5e9a52-first-answer"
    log_group_name = "/aws/lambda/ApiFunction"
    log_stream_name = "local"
    def get_remaining_time_in_millis(self):
        return 29000
"""

# The handler's first answer; with RECORD set, the AWS calls it made (after the clock).
ANSWER_PROBE = (
    _CONTEXT
    + """
import json, os, time
event = json.loads(open({event!r}).read())
record = os.environ.get("RECORD") == "1"
if record:
    from botocore.client import BaseClient
    calls = []
    original = BaseClient._make_api_call
    def recorded(client, operation, params):
        calls.append((client.meta.service_model.service_name, operation, params))
        return original(client, operation, params)
    BaseClient._make_api_call = recorded
cpu, wall = time.process_time(), time.perf_counter()
import app
answer = app.handler(event, LambdaContext())
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
assert b"Success" in answer["body"].encode(), answer
out = {{"cpu": cpu * 1000, "wall": wall * 1000}}
if record:
    import base64
    def plain(value):
        if isinstance(value, bytes):
            return {{"__bytes__": base64.b64encode(value).decode()}}
        raise TypeError(type(value))
    out["calls"] = json.loads(json.dumps(calls, default=plain))
print(json.dumps(out))
"""
)

# The same calls with bare boto3: one session, the clients the handler made (with the
# configuration of mmsapi/store/aws.py), each recorded call in order.
REPLAY_PROBE = """
import base64, json, sys
def revive(value):
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revive(v) for v in value]
    return value
calls = revive(json.loads(sys.stdin.read()))
import time
cpu, wall = time.process_time(), time.perf_counter()
import boto3
from botocore import xform_name
from botocore.config import Config
config = Config(connect_timeout=3, read_timeout=10,
                retries={"max_attempts": 4, "mode": "standard"}, tcp_keepalive=True)
session = boto3.session.Session()
clients = {}
for service, operation, params in calls:
    if service not in clients:
        clients[service] = session.client(service, config=config)
    getattr(clients[service], xform_name(operation))(**params)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({"cpu": cpu * 1000, "wall": wall * 1000}))
"""


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def lambda_environment(function_name: str, own: Mapping[str, str]) -> dict[str, str]:
    """What Lambda gives a function's process (tracing on) and its own variables."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "_X_AMZN_TRACE_ID": (
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        ),
        # The daemon's address on Lambda; here an unused port: segments go nowhere.
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{_free_port(socket.SOCK_DGRAM)}",
        **own,
    }


def _run(code: str, paths: list[Path], env: Mapping[str, str], stdin: str = "") -> Any:
    prelude = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + code],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env),
        cwd="/",
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Measured:
    """A median figure, the bare-boto3 median it is held against, and the goal ratio."""

    name: str
    figure: float  # ms
    baseline: float  # ms
    goal: float

    @property
    def ratio(self) -> float:
        return self.figure / self.baseline

    def line(self) -> str:
        verdict = "ok" if self.ratio <= self.goal else "OVER"
        return (
            f"{self.name:34} {self.figure:8.1f} ms {self.baseline:8.1f} ms "
            f"{self.ratio:6.2f}x  <= {self.goal:.1f}x  {verdict}"
        )

    def as_figure(self, what: str) -> Figure:
        return Figure(f"cold start: {what} / bare boto3", round(self.ratio, 2), self.goal, "x")


def import_figures(stack: Any) -> list[Measured]:
    from local.stack import function_logical_ids

    rows = []
    specs = function_logical_ids()
    for logical_id in stack.function_ids():
        spec = specs[logical_id]
        env = lambda_environment(logical_id, stack.function_environment(logical_id))
        paths = [spec.code_uri, COMMON]  # /var/task first, then the layer (/opt/python)
        handler, bare = [], []
        for _ in range(RUNS):  # interleaved: a busy moment costs both alike
            bare.append(_run(IMPORT_PROBE.format(statement="import boto3"), paths, env)["cpu"])
            statement = f"import {spec.module}"
            handler.append(_run(IMPORT_PROBE.format(statement=statement), paths, env)["cpu"])
        name = f"{spec.code_uri.relative_to(ROOT)}/{spec.module}.py"
        rows.append(
            Measured(name, statistics.median(handler), statistics.median(bare), IMPORT_GOAL)
        )
    return rows


def first_answer_figures(stack: Any, endpoint: str) -> tuple[list[Measured], list[str]]:
    from local.stack import function_logical_ids

    spec = function_logical_ids()["ApiFunction"]
    env = lambda_environment("ApiFunction", stack.function_environment("ApiFunction"))
    env.update(AWS_ENDPOINT_URL=endpoint, POWERTOOLS_LOG_LEVEL="WARNING")
    paths = [spec.code_uri, COMMON]
    probe = ANSWER_PROBE.format(event=str(EVENT))
    calls = _run(probe, paths, {**env, "RECORD": "1"})["calls"]
    handler: list[dict[str, float]] = []
    bare: list[dict[str, float]] = []
    for _ in range(RUNS):
        handler.append(_run(probe, paths, env))
        _clear_conditional_items(calls)
        bare.append(_run(REPLAY_PROBE, [], env, stdin=json.dumps(calls)))
    rows = [
        Measured(
            f"first saveMMS answer ({measure})",
            statistics.median(run[measure] for run in handler),
            statistics.median(run[measure] for run in bare),
            FIRST_ANSWER_GOAL,
        )
        for measure in ("wall", "cpu")
    ]
    made = [f"{service}.{operation}" for service, operation, _ in calls]
    return rows, made


def _conditional_writes(calls: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, Put item or Update key) of every conditional DynamoDB write recorded."""
    writes: list[dict[str, Any]] = []
    for service, operation, params in calls:
        if service != "dynamodb":
            continue
        if operation == "TransactWriteItems":
            writes += [next(iter(item.values())) for item in params["TransactItems"]]
        elif operation in {"PutItem", "UpdateItem"}:
            writes.append(params)
    return [
        (write["TableName"], write.get("Key") or write["Item"])
        for write in writes
        if "ConditionExpression" in write and ("Key" in write or "Item" in write)
    ]


def _clear_conditional_items(calls: list[Any]) -> None:
    """Each replay starts from the state the handler started from: the items its
    conditional writes touched (the new template, its outbox item, this second's rate
    counter) are absent, so the same writes succeed again."""
    import boto3

    client = boto3.session.Session().client("dynamodb")
    for table, item in _conditional_writes(calls):
        schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
        key = {part["AttributeName"]: item[part["AttributeName"]] for part in schema}
        client.delete_item(TableName=table, Key=key)


def _emulated_aws() -> tuple[Any, Any, str]:
    """A moto server on loopback with the template's resources and the sample account."""
    from moto.server import ThreadedMotoServer

    port = _free_port(socket.SOCK_STREAM)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=endpoint,
        POWERTOOLS_TRACE_DISABLED="1",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    os.environ.pop("AWS_PROFILE", None)
    from local import dynamodb

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    dynamodb.install()  # the server runs in this process: its transactions as AWS's
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()

    from local.functions import function_environment
    from local.stack import provision
    from mmsapi.models import Shortcode
    from mmsapi.services.accounts import create_account
    from mmsapi.settings import scoped_settings, settings_from
    from mmsapi.store.accounts import AccountStore

    stack = provision("mmsapi-bench")
    with scoped_settings(settings_from(function_environment(stack))):
        create_account(
            AccountStore(),
            "bench",
            api_key=SAMPLE_KEY,
            service_id="12345",
            shortcodes=[Shortcode(code="28444", country="US")],
        )
    return server, stack, endpoint


def main() -> None:
    server, stack, endpoint = _emulated_aws()
    try:
        header = f"{'':34} {'figure':>11} {'bare boto3':>11} {'ratio':>7}  {'goal':>7}"
        print(f"Cold start, median of {RUNS} fresh interpreters each (Lambda env, tracing on)")
        print("(a) handler module import, CPU time, against `import boto3`")
        print(header)
        imports = import_figures(stack)
        for row in imports:
            print(row.line())
        answers, made = first_answer_figures(stack, endpoint)
        print("(b) fresh interpreter -> first text-only saveMMS answer, against the same")
        print(f"    AWS calls made with bare boto3: {', '.join(made)}")
        print(header)
        for row in answers:
            print(row.line())
    finally:
        server.stop()
    record(
        *(row.as_figure(f"{Path(row.name).parent.name} import (CPU)") for row in imports),
        *(row.as_figure(row.name) for row in answers),
    )


if __name__ == "__main__":
    main()
