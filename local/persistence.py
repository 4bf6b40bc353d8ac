"""Local state that survives a restart of `make local`: every table's items and every
bucket's objects, kept under <data dir>/state/ (`make local-reset` removes it).

The embedded AWS lives in memory. While the runtime runs, a snapshot is written
every SNAPSHOT_SECONDS and once more when it stops; the next start writes it back
into the fresh tables and buckets before any function runs. Tables and buckets are
kept by logical id (the physical names are the stack's, and could change with it).
A table is written whole to a new file which then replaces the old one, so a crash
leaves the previous snapshot, never half of one. Objects are copied once each (by
ETag): a template's media is not rewritten every few seconds.

What is in flight is not kept: messages in queues, running state machines. A send
that was queued when the runtime stopped ends like any send whose worker died (the
sweeper gives it its final postback when its deadline passes).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3

from local.stack import Stack

log = logging.getLogger("local.persistence")

SNAPSHOT_SECONDS = 5.0
TABLE = "AWS::DynamoDB::Table"
BUCKET = "AWS::S3::Bucket"
# DynamoDB's BatchWriteItem takes at most 25 items.
BATCH = 25


def state_dir(data_dir: Path) -> Path:
    return data_dir / "state"


def reset(data_dir: Path) -> None:
    """Forget the kept state (the next start begins empty)."""
    shutil.rmtree(state_dir(data_dir), ignore_errors=True)


class LocalState:
    """Snapshots of one stack's tables and buckets under <data dir>/state/."""

    def __init__(self, stack: Stack, data_dir: Path) -> None:
        self.stack = stack
        self.root = state_dir(data_dir)
        self._lock = threading.Lock()
        self._session = boto3.session.Session(region_name=stack.region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """This snapshotter's own client (AWS_ENDPOINT_URL: the embedded AWS)."""
        if service not in self._clients:
            self._clients[service] = self._session.client(service)  # type: ignore[call-overload]
        return self._clients[service]

    def _resources(self, kind: str) -> Iterator[tuple[str, str]]:
        for logical_id, resource in self.stack.template["Resources"].items():
            if resource.get("Type") == kind and logical_id in self.stack.physical:
                yield logical_id, self.stack.physical[logical_id]

    # ---------------------------------------------------------------- saving

    def save(self) -> None:
        """Write the snapshot (one at a time: the periodic one and the final one)."""
        with self._lock:
            for logical_id, table in self._resources(TABLE):
                self._saving(self._save_table, logical_id, table)
            for logical_id, bucket in self._resources(BUCKET):
                self._saving(self._save_bucket, logical_id, bucket)

    @staticmethod
    def _saving(save: Callable[[str, str], None], logical_id: str, name: str) -> None:
        # One resource's failure (a scan racing a writer in the emulator) leaves its last
        # snapshot in place and the others are still saved; the next tick tries again.
        try:
            save(logical_id, name)
        except Exception:
            log.warning("could not save %s now; its last snapshot stays", logical_id)

    def _save_table(self, logical_id: str, table: str) -> None:
        path = self.root / "dynamodb" / f"{logical_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        pages = self.client("dynamodb").get_paginator("scan").paginate(TableName=table)
        try:
            with partial.open("w", encoding="utf-8") as out:
                for page in pages:
                    for item in page["Items"]:
                        out.write(json.dumps(_wire(item), separators=(",", ":")) + "\n")
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)  # a failed scan leaves the last snapshot only

    def _save_bucket(self, logical_id: str, bucket: str) -> None:
        s3 = self.client("s3")
        directory = self.root / "s3" / logical_id
        objects = directory / "objects"
        objects.mkdir(parents=True, exist_ok=True)
        manifest_path = directory / "manifest.json"
        kept: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            kept = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest: dict[str, dict[str, Any]] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for summary in page.get("Contents", []):
                key, etag = summary["Key"], summary["ETag"]
                name = hashlib.sha256(key.encode("utf-8")).hexdigest()  # any key, 64 chars
                if kept.get(key, {}).get("etag") == etag and (objects / name).exists():
                    manifest[key] = kept[key]
                    continue
                with contextlib.suppress(s3.exceptions.NoSuchKey):
                    got = s3.get_object(Bucket=bucket, Key=key)
                    # A new file then a rename: a crash never leaves half an object.
                    partial = objects / f"{name}.partial"
                    try:
                        partial.write_bytes(got["Body"].read())
                        partial.replace(objects / name)
                    finally:
                        partial.unlink(missing_ok=True)
                    manifest[key] = {
                        "etag": etag,
                        "file": name,
                        "content_type": got.get("ContentType", "binary/octet-stream"),
                        "content_disposition": got.get("ContentDisposition", ""),
                        "metadata": got.get("Metadata", {}),
                    }
        for key, entry in kept.items():
            if key not in manifest:  # deleted since: its copy goes too
                (objects / entry["file"]).unlink(missing_ok=True)
        partial = manifest_path.with_suffix(".partial")
        partial.write_text(json.dumps(manifest), encoding="utf-8")
        partial.replace(manifest_path)

    # ---------------------------------------------------------------- restoring

    def restore(self) -> tuple[int, int]:
        """Write the kept items and objects back; returns (items, objects)."""
        items = objects = 0
        for logical_id, table in self._resources(TABLE):
            items += self._restore_table(logical_id, table)
        for logical_id, bucket in self._resources(BUCKET):
            objects += self._restore_bucket(logical_id, bucket)
        return items, objects

    def _restore_table(self, logical_id: str, table: str) -> int:
        path = self.root / "dynamodb" / f"{logical_id}.jsonl"
        if not path.exists():
            return 0
        dynamodb = self.client("dynamodb")
        batch: list[dict[str, Any]] = []
        count = 0
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                batch.append({"PutRequest": {"Item": _unwire(json.loads(line))}})
                if len(batch) == BATCH:
                    count += _write_batch(dynamodb, table, batch)
                    batch = []
        if batch:
            count += _write_batch(dynamodb, table, batch)
        return count

    def _restore_bucket(self, logical_id: str, bucket: str) -> int:
        directory = self.root / "s3" / logical_id
        try:
            manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return 0
        s3 = self.client("s3")
        count = 0
        for key, entry in manifest.items():
            source = directory / "objects" / entry["file"]
            if not source.exists():
                continue
            disposition = entry.get("content_disposition")
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=source.read_bytes(),
                ContentType=entry["content_type"],
                Metadata=entry["metadata"],
                **({"ContentDisposition": disposition} if disposition else {}),
            )
            count += 1
        return count


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    """An item as DynamoDB's JSON carries it: binary values (a send's document) base64."""
    return {name: _typed(value, _b64) for name, value in item.items()}


def _unwire(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _typed(value, base64.b64decode) for name, value in item.items()}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _typed(value: dict[str, Any], convert: Callable[[Any], Any]) -> dict[str, Any]:
    """One typed attribute value with its binary parts converted, at any depth."""
    [(kind, data)] = value.items()
    if kind == "B":
        return {kind: convert(data)}
    if kind == "BS":
        return {kind: [convert(d) for d in data]}
    if kind == "M":
        return {kind: {k: _typed(v, convert) for k, v in data.items()}}
    if kind == "L":
        return {kind: [_typed(v, convert) for v in data]}
    return value


def _write_batch(dynamodb: Any, table: str, batch: list[dict[str, Any]]) -> int:
    pending: dict[str, Any] = {table: batch}
    while pending:
        answer = dynamodb.batch_write_item(RequestItems=pending)
        pending = answer.get("UnprocessedItems") or {}
    return len(batch)


class Snapshotter(threading.Thread):
    """Saves the state every SNAPSHOT_SECONDS until `stop_event`, then once more."""

    def __init__(self, state: LocalState, stop_event: threading.Event) -> None:
        super().__init__(name="local-state", daemon=True)
        self.state = state
        self.stop_event = stop_event

    def run(self) -> None:
        while not self.stop_event.wait(SNAPSHOT_SECONDS):
            self._save()

    def _save(self) -> None:
        try:
            self.state.save()
        except Exception:  # a snapshot that fails now is tried again at the next tick
            log.exception("could not save the local state")

    def final(self) -> None:
        """The last snapshot, once everything has stopped writing."""
        self._save()
