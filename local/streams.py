"""The DynamoDB stream event sources of template.yaml, polled the way Lambda polls them.

Each AWS::Lambda::EventSourceMapping whose source is a table's StreamArn is a
StreamSource. A StreamReader reads its records from where it left off (TRIM_HORIZON
first); a StreamPoller thread hands them to the function as one event, in order, and
moves on past a batch only when it succeeded: on a batchItemFailures answer it reads
again from the failed record, on an error from the batch's first, after a pause
(Lambda retries a stream batch until it succeeds or its records expire). Records that
match none of the mapping's FilterCriteria patterns are dropped unseen, as Lambda drops
them (local/stream_filters.py); a batch of only those invokes nothing.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.functions import LocalFunction
from local.stack import Stack
from local.stream_filters import passes, patterns_of

# botocore sends stream calls to <account>.streams-ddb.<region>..., which moto does not
# serve: the regional endpoint is the same service.
_STREAMS_CONFIG = Config(account_id_endpoint_mode="disabled")
POLL_SECONDS = 0.2
RETRY_SECONDS = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSource:
    """One DynamoDB event of a function (an event source mapping on AWS)."""

    function: str
    table: str  # physical name
    stream_arn: str
    batch_size: int
    report_failures: bool
    patterns: tuple[dict[str, Any], ...] = ()  # FilterCriteria (none: every record)


def stream_sources(stack: Stack) -> list[StreamSource]:
    """The DynamoDB stream event source mappings of the stack's functions."""
    sources: list[StreamSource] = []
    functions = set(stack.function_ids())
    client = boto3.session.Session().client("dynamodb", region_name=stack.region)
    for resource in stack.template["Resources"].values():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        raw = resource.get("Properties", {})
        function = raw.get("FunctionName", {}).get("Ref")
        target = raw.get("EventSourceArn", {}).get("Fn::GetAtt")
        if isinstance(target, str):
            target = target.split(".", 1)
        if function not in functions or not target or target[1] != "StreamArn":
            continue
        table = stack.physical[target[0]]
        arn = client.describe_table(TableName=table)["Table"].get("LatestStreamArn", "")
        if not arn:
            log.warning("%s has no stream: %s gets no events", table, function)
            continue
        sources.append(
            StreamSource(
                function=function,
                table=table,
                stream_arn=arn,
                batch_size=max(1, min(1000, int(raw.get("BatchSize", 100)))),
                report_failures="ReportBatchItemFailures"
                in (raw.get("FunctionResponseTypes") or []),
                patterns=patterns_of(raw.get("FilterCriteria")),
            )
        )
    return sources


def lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A stream record as Lambda hands it over (epoch seconds, eventSourceARN, binary
    attributes in base64: the event is JSON)."""
    stream = {key: _json_ready(value) for key, value in record.get("dynamodb", {}).items()}
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID", ""),
        "eventName": record.get("eventName", ""),
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": stream,
        "eventSourceARN": stream_arn,
    }


def _json_ready(value: Any) -> Any:
    """Binary values (B, BS) as the base64 text of Lambda's JSON event."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


@dataclass
class StreamReader:
    """Reads a stream's records in order, from where it left off (one shard per table in
    moto; each shard is followed on its own)."""

    source: StreamSource
    region: str
    after: dict[str, str] = field(default_factory=dict)  # shard id -> last sequence done
    # One client for the reader's life: a session per poll (5 a second) reloads
    # botocore's endpoint and service models each time.
    _client: Any = field(default=None, init=False, repr=False)

    def read(self, acting: Callable[[], Any]) -> list[tuple[str, dict[str, Any]]]:
        """Up to batch_size new records, as (shard id, Lambda record)."""
        if self._client is None:
            self._client = boto3.session.Session().client(
                "dynamodbstreams", region_name=self.region, config=_STREAMS_CONFIG
            )
        client = self._client
        found: list[tuple[str, dict[str, Any]]] = []
        with acting():  # Lambda reads the stream with the function's role
            shards = client.describe_stream(StreamArn=self.source.stream_arn)
            for shard in shards["StreamDescription"].get("Shards", []):
                shard_id = shard["ShardId"]
                position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
                if shard_id in self.after:
                    position = {
                        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                        "SequenceNumber": self.after[shard_id],
                    }
                iterator = client.get_shard_iterator(
                    StreamArn=self.source.stream_arn, ShardId=shard_id, **position
                )["ShardIterator"]
                got = client.get_records(ShardIterator=iterator, Limit=self.source.batch_size)
                found.extend(
                    (shard_id, lambda_record(dict(r), self.source.stream_arn, self.region))
                    for r in got.get("Records", [])
                )
                if found:
                    return found  # one shard's batch per invocation, as Lambda does
        return found

    def done(self, shard_id: str, sequence_number: str) -> None:
        self.after[shard_id] = sequence_number


def deliver(
    reader: StreamReader, invoke: Callable[[dict[str, Any]], Any], acting: Callable[[], Any]
) -> int:
    """Hand the next batch to the function; move past what succeeded. Returns how many
    records were read (0: nothing new), whether handed over or dropped by the mapping's
    filters. Raises what the function raised."""
    batch = reader.read(acting)
    if not batch:
        return 0
    shard_id = batch[0][0]
    records = [record for _, record in batch if passes(record, reader.source.patterns)]
    if not records:  # every record filtered out: Lambda moves past them, invoking nothing
        reader.done(shard_id, str(batch[-1][1]["dynamodb"].get("SequenceNumber", "")))
        return len(batch)
    result = invoke({"Records": records})
    sequences = [str(r["dynamodb"].get("SequenceNumber", "")) for r in records]
    failed = _first_failure(result, sequences, reader.source.report_failures)
    read = [str(r["dynamodb"].get("SequenceNumber", "")) for _, r in batch]
    # Past the whole batch (the records filtered out too), or up to the failed record.
    upto = len(read) if failed is None else read.index(failed)
    if upto:
        reader.done(shard_id, read[upto - 1])
    return len(batch)


def _first_failure(result: Any, sequences: list[str], report_failures: bool) -> str | None:
    """The sequence number Lambda retries from, as it reads the function's answer."""
    if not report_failures or result is None:
        return None
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return None if isinstance(result, dict) else sequences[0]
    ids = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
    if any(i not in sequences for i in ids):
        return sequences[0]  # an unknown identifier fails the whole batch
    return min(ids, key=sequences.index)  # type: ignore[arg-type]


class StreamPoller(threading.Thread):
    """Lambda's DynamoDB stream event source mapping for one function."""

    def __init__(
        self, source: StreamSource, function: LocalFunction, stop: threading.Event, region: str
    ) -> None:
        super().__init__(name=f"stream-{source.function}", daemon=True)
        self.reader = StreamReader(source, region)
        self.function = function
        self.stop = stop

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                handed = deliver(self.reader, self.function.invoke, self.function.acting)
            except (BotoCoreError, ClientError) as exc:
                log.warning("reading %s failed: %s", self.reader.source.stream_arn, exc)
                self.stop.wait(RETRY_SECONDS)
                continue
            except Exception:  # the batch is retried, as Lambda retries a stream batch
                log.exception("%s failed on a stream batch", self.function.logical_id)
                self.stop.wait(RETRY_SECONDS)
                continue
            if not handed:
                self.stop.wait(POLL_SECONDS)
