"""A stand-in X-Ray daemon (a UDP socket on loopback) and the segment document rules
(docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html) that every
document it receives must follow."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

HEADER = {"format": "json", "version": 1}
TRACE_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
ENTITY_ID = re.compile(r"^[0-9a-f]{16}$")
# Unicode letters, numbers, whitespace and _ . : / % & # = + \ - @ (up to 200 characters)
NAME = re.compile(r"^[\w\s.:/%&#=+\\\-@]{1,200}$")
ANNOTATION_KEY = re.compile(r"^[A-Za-z0-9_]+$")
# Lambda's trace header in the tests: its function segment's id is the Parent.
ROOT = "1-5759e988-bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"


def trace_header(sampled: bool = True) -> str:
    return f"Root={ROOT};Parent={PARENT};Sampled={int(sampled)}"


class Daemon:
    """Receives datagrams on 127.0.0.1; `documents()` takes what arrived so far."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.raw: list[bytes] = []

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def datagrams(self) -> list[bytes]:
        got: list[bytes] = []
        while True:
            try:
                got.append(self.sock.recv(70_000))
            except BlockingIOError:
                self.raw.extend(got)
                return got

    def documents(self) -> list[dict[str, Any]]:
        """Every datagram's document, each checked against the protocol and the schema."""
        found = []
        for datagram in self.datagrams():
            header, newline, body = datagram.partition(b"\n")
            assert newline, datagram[:80]
            assert json.loads(header) == HEADER, datagram[:80]
            assert len(body) <= 64_000
            document = json.loads(body)
            check_document(document)
            found.append(document)
        return found

    def close(self) -> None:
        self.sock.close()


def check_document(doc: dict[str, Any]) -> None:
    """An independent subsegment document as the published schema describes it."""
    assert doc["type"] == "subsegment", doc
    assert NAME.match(doc["name"]), doc["name"]
    assert ENTITY_ID.match(doc["id"]), doc
    assert TRACE_ID.match(doc["trace_id"]), doc
    assert ENTITY_ID.match(doc["parent_id"]), doc
    assert isinstance(doc["start_time"], float), doc
    assert isinstance(doc["end_time"], float), doc
    assert doc["start_time"] <= doc["end_time"], doc
    assert "in_progress" not in doc
    assert doc.get("namespace", "aws") in {"aws", "remote"}, doc
    for flag in ("error", "throttle", "fault"):
        assert isinstance(doc.get(flag, False), bool), doc
    for key, value in doc.get("annotations", {}).items():
        assert ANNOTATION_KEY.match(key), key
        assert isinstance(value, str | int | float | bool), (key, value)
        assert not isinstance(value, str) or len(value) <= 250, (key, value)
    for space, values in doc.get("metadata", {}).items():
        assert isinstance(space, str), doc
        assert isinstance(values, dict), doc
    http = doc.get("http", {})
    if "request" in http:
        assert isinstance(http["request"]["method"], str), doc
        assert isinstance(http["request"]["url"], str), doc
    if "response" in http:
        assert isinstance(http["response"]["status"], int), doc
    if doc.get("namespace") == "aws":
        assert isinstance(doc["aws"]["operation"], str), doc
    if "cause" in doc:
        for exception in doc["cause"]["exceptions"]:
            assert ENTITY_ID.match(exception["id"]), exception
            for frame in exception.get("stack", []):
                assert set(frame) <= {"path", "line", "label"}, frame


def chain(doc: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[str]:
    """The names from `doc` up to Lambda's segment, which must end the chain."""
    names = []
    while doc["parent_id"] in by_id:
        names.append(doc["name"])
        doc = by_id[doc["parent_id"]]
    names.append(doc["name"])
    assert doc["parent_id"] == PARENT, (names, doc)
    return names
