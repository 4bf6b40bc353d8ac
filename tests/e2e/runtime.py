"""The local runtime under test: `python -m local.runtime` as a subprocess, and its helpers.

Each e2e module starts its own runtime (start-up is the slow part, so one per
module) with `started_runtime`, giving the environment it differs in. When it
stops, the runtime's AWS gate report (<data dir>/aws-gate.json) must show no
denial: every call each function made was allowed by its own role. Postbacks
go to a pytest-httpserver on loopback (`LocalRuntime.web`), which only the
local runtime may fetch from; modules serve their media from the same server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

ROOT = Path(__file__).resolve().parents[2]
KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"
START_TIMEOUT = 60.0
# Never inherited from the shell: the runtime brings its own AWS, key and carrier.
UNSET = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MMS_LOCAL_API_KEY")


@dataclass
class Postback:
    body: bytes
    headers: dict[str, str]

    @property
    def fields(self) -> dict[str, str]:
        return answer(self.body)[1]


@dataclass
class Postbacks:
    """What the postback URL received (pytest-httpserver calls `record` on its thread)."""

    received: list[Postback] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: Request) -> Response:
        with self.lock:
            headers = {name.lower(): value for name, value in request.headers.items()}
            self.received.append(Postback(request.get_data(), headers))
        return Response("ok", status=200)

    def wait_for(self, found: Callable[[Postback], bool], timeout: float) -> Postback:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for postback in self.received:
                    if found(postback):
                        return postback
            time.sleep(0.1)
        raise AssertionError(f"no such postback within {timeout} s; got {self.received}")

    def all(self) -> list[Postback]:
        with self.lock:
            return list(self.received)


@dataclass
class LocalRuntime:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    api_url: str
    data_dir: Path
    output: Path
    web: HTTPServer
    postbacks: Postbacks

    @property
    def state_file(self) -> Path:
        return self.data_dir / "runtime.json"

    def gate_report(self) -> dict[str, Any]:
        """What the AWS gate checked and denied (written when the runtime stops)."""
        report: dict[str, Any] = json.loads((self.data_dir / "aws-gate.json").read_text())
        return report

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def post(self, path: str, body: str, content_type: str = "application/xml") -> bytes:
        request = urllib.request.Request(
            self.api_url + path,
            data=body.encode("utf-8"),
            headers={"Content-Type": content_type},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            data: bytes = response.read()
            return data

    def _aws(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Connection settings of the runtime's embedded AWS, and its environment."""
        state = json.loads(self.state_file.read_text())
        connection = {
            "endpoint_url": state["aws_endpoint"],
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        return connection, state["environment"]

    def template(self, mms_id: str) -> dict[str, Any]:
        connection, env = self._aws()
        item = boto3.client("dynamodb", **connection).get_item(
            TableName=env["MMS_TEMPLATES_TABLE"], Key={"mms_id": {"N": mms_id}}
        )["Item"]
        doc: dict[str, Any] = json.loads(item["doc"]["S"])
        return doc

    def media(self, key: str) -> bytes:
        connection, env = self._aws()
        s3 = boto3.client("s3", **connection)
        data: bytes = s3.get_object(Bucket=env["MMS_MEDIA_BUCKET"], Key=key)["Body"].read()
        return data

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command line of the project (admin, invoke) beside the running runtime."""
        return subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answer(xml: bytes) -> tuple[str, dict[str, str]]:
    """The root tag of an XML answer and its flat fields."""
    root = etree.fromstring(xml)
    return str(root.tag), {str(child.tag): child.text or "" for child in root}


def stop(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Ctrl-C, as a terminal would send it; the exit code, or None if it hung."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


@contextmanager
def started_runtime(
    tmp: Path,
    *,
    env: Mapping[str, str] | None = None,
    unset: tuple[str, ...] = (),
    template: Path | None = None,
    expect_denials: bool = False,
) -> Iterator[LocalRuntime]:
    """`python -m local.runtime` on free ports, ready, postbacks going to `web`/postback.

    `env` is added to this process's environment; UNSET and `unset` are removed
    from it; `template` replaces template.yaml. On leaving: Ctrl-C (a kill if it
    hangs), the web server stops, and unless `expect_denials` the AWS gate must
    have denied nothing.
    """
    web = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    web.start()
    postbacks = Postbacks()
    web.expect_request("/postback", method="POST").respond_with_handler(postbacks.record)
    port, aws_port = free_port(), free_port()
    environment = {
        **os.environ,
        "MMS_LOCAL_PORT": str(port),
        "MMS_LOCAL_AWS_PORT": str(aws_port),
        "MMS_LOCAL_DATA_DIR": str(tmp / "data"),
        "MMS_LOCAL_POSTBACK_URL": web.url_for("/postback"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    for name in (*UNSET, *unset):
        environment.pop(name, None)
    output = tmp / "runtime.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.runtime",
                *(["--template", str(template)] if template is not None else []),
            ],
            cwd=ROOT,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    started = LocalRuntime(
        process, environment, f"http://127.0.0.1:{port}", tmp / "data", output, web, postbacks
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not started.state_file.exists():
            if process.poll() is not None:
                pytest.fail(f"the runtime exited with {process.returncode}:\n{started.text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the runtime was not ready in {START_TIMEOUT} s:\n{started.text()}")
            time.sleep(0.1)
        yield started
    finally:
        stopped = stop(process, 10)
        if stopped is None:
            process.kill()
            process.wait()
        web.clear()
        web.stop()
    if stopped is not None and not expect_denials:
        denials = started.gate_report()["denials"]
        assert denials == [], f"calls the functions' roles do not allow: {denials}"
