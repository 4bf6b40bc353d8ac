"""The docker-free `sam local invoke`: one function's real handler, one event, in-process.

    .venv/bin/python -m local.invoke ApiFunction events/api/save-text-current.json

It runs against the local runtime started by `make local` (its tables, bucket and
queues), found through <MMS_LOCAL_DATA_DIR>/runtime.json. The handler's logs go to
stderr and its result, as JSON, to stdout: `... | jq -r .body` works.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local.functions import LocalFunction, import_handler, reset_product_caches
from local.runtime import FAKE_CREDENTIALS, REGION, data_dir
from local.stack import function_logical_ids


def read_state() -> dict[str, Any]:
    """The running local runtime's state file, or exit with what to do."""
    state_file = data_dir() / "runtime.json"
    if not state_file.exists():
        sys.exit(
            f"The local runtime is not running ({state_file} does not exist): "
            "start it with `make local` (with the same MMS_LOCAL_DATA_DIR)."
        )
    state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
    endpoint = urlsplit(state["aws_endpoint"])
    try:
        socket.create_connection((endpoint.hostname or "127.0.0.1", endpoint.port or 80), 2).close()
    except OSError:
        sys.exit(
            f"The local runtime is not running: nothing answers at {state['aws_endpoint']} "
            f"({state_file} is left from an earlier run). Start it with `make local`."
        )
    return state


def load_event(source: str | None) -> Any:
    if source is None:
        return {}  # like `sam local invoke` without -e
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        sys.exit(f"{source} is not JSON: {exc}")


def main(argv: list[str] | None = None) -> None:
    top = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__)
    top.add_argument("function", help="logical id in template.yaml, e.g. ApiFunction")
    top.add_argument("event", nargs="?", help="event JSON file ('-' = stdin; none = {})")
    args = top.parse_args(argv)

    specs = function_logical_ids()
    if args.function not in specs:
        sys.exit(f"No function {args.function} in template.yaml; there are: {', '.join(specs)}")
    event = load_event(args.event)
    state = read_state()
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": state["aws_endpoint"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    about = state.get("functions", {}).get(args.function, {})
    # This process is the function's alone, as on Lambda: its own variables only.
    environment: dict[str, str] = about.get("environment", state["environment"])
    os.environ.update(environment)
    # Handlers log to stdout (Powertools keeps the stream it sees when imported): send
    # that to stderr, so that stdout holds the result only.
    result_out = sys.stdout
    sys.stdout = sys.stderr
    reset_product_caches()
    function = LocalFunction(
        spec=specs[args.function],
        name=about.get("name", f"{state.get('stack_name', 'mmsapi-local')}-{args.function}"),
        arn=about.get("arn", f"arn:aws:lambda:{REGION}:123456789012:function:{args.function}"),
        memory_mb=int(about.get("memory_mb", 1024)),
        timeout_seconds=float(about.get("timeout_seconds", 30)),
        environment=environment,
    )
    try:
        function.handler = import_handler(function.spec)
        result = function.invoke(event)
    except Exception as exc:
        # The shape Lambda gives an unhandled error.
        error = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_exception(exc),
        }
        result_out.write(json.dumps(error, indent=2) + "\n")
        sys.exit(1)
    result_out.write(json.dumps(result, indent=2, default=str) + "\n")
    result_out.flush()


if __name__ == "__main__":
    main()
