"""Lambda's event filtering for stream event sources, as local/streams.py applies it:
the filter-pattern subset of local/stream_filters.py, and the outbox mapping's filter
of template.yaml dropping REMOVE records without invoking the relay."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local.stack import load_template
from local.stream_filters import passes, patterns_of
from local.streams import StreamReader, StreamSource, deliver

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def _record(event_name: str, sequence: int, status: str | None = None) -> dict[str, Any]:
    stream: dict[str, Any] = {"SequenceNumber": f"{sequence:021d}", "Keys": {"id": {"S": "x"}}}
    if status is not None:
        stream["NewImage"] = {"id": {"S": "x"}, "status": {"S": status}}
    return {"eventName": event_name, "dynamodb": stream}


def _criteria(*patterns: str) -> dict[str, Any]:
    return {"Filters": [{"Pattern": p} for p in patterns]}


def test_a_list_of_literals_matches_any_of_them_and_patterns_are_ored() -> None:
    patterns = patterns_of(_criteria('{"eventName": ["INSERT"]}', '{"eventName": ["MODIFY"]}'))
    assert passes(_record("INSERT", 1), patterns)
    assert passes(_record("MODIFY", 1), patterns)
    assert not passes(_record("REMOVE", 1), patterns)


def test_nested_keys_must_all_match() -> None:
    patterns = patterns_of(
        _criteria(
            '{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["queued"]}}}}'
        )
    )
    assert passes(_record("INSERT", 1, "queued"), patterns)
    assert not passes(_record("INSERT", 1, "sent"), patterns)
    assert not passes(_record("MODIFY", 1, "queued"), patterns)
    assert not passes(_record("INSERT", 1), patterns)  # no NewImage at all


def test_prefix_anything_but_and_exists() -> None:
    image = '{"dynamodb": {"NewImage": {"status": {"S": [%s]}}}}'
    prefix = patterns_of(_criteria(image % '{"prefix": "que"}'))
    assert passes(_record("INSERT", 1, "queued"), prefix)
    assert not passes(_record("INSERT", 1, "sent"), prefix)
    anything_but = patterns_of(_criteria('{"eventName": [{"anything-but": ["REMOVE"]}]}'))
    assert passes(_record("INSERT", 1), anything_but)
    assert not passes(_record("REMOVE", 1), anything_but)
    exists = patterns_of(_criteria('{"dynamodb": {"NewImage": {"status": [{"exists": true}]}}}'))
    assert passes(_record("INSERT", 1, "queued"), exists)
    assert not passes(_record("REMOVE", 1), exists)
    missing = patterns_of(_criteria('{"dynamodb": {"NewImage": [{"exists": false}]}}'))
    assert passes(_record("REMOVE", 1), missing)
    assert not passes(_record("INSERT", 1, "queued"), missing)


def test_no_criteria_passes_everything_and_an_unknown_operator_is_refused() -> None:
    assert passes(_record("REMOVE", 1), patterns_of(None))
    with pytest.raises(ValueError, match="not supported"):
        patterns_of(
            _criteria('{"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">", 0]}]}}')
        )


def test_the_outbox_mapping_passes_new_items_only() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    criteria = resources["OutboxFunction"]["Properties"]["Events"]["Outbox"]["Properties"][
        "FilterCriteria"
    ]
    patterns = patterns_of(criteria)
    assert [passes(_record(e, 1, "x"), patterns) for e in ("INSERT", "MODIFY", "REMOVE")] == [
        True,
        True,
        False,
    ]


@dataclass
class _Reader:
    """A StreamReader's place-keeping, over a fixed list of records."""

    source: StreamSource
    records: list[dict[str, Any]]
    after: dict[str, str] = field(default_factory=dict)

    def read(self, _acting: Any) -> list[tuple[str, dict[str, Any]]]:
        last = self.after.get("shard", "")
        new = [r for r in self.records if r["dynamodb"]["SequenceNumber"] > last]
        return [("shard", r) for r in new[: self.source.batch_size]]

    def done(self, shard_id: str, sequence_number: str) -> None:
        self.after[shard_id] = sequence_number


def _source(report_failures: bool = True) -> StreamSource:
    patterns = patterns_of(_criteria('{"eventName": ["INSERT", "MODIFY"]}'))
    return StreamSource("F", "table", "arn", 10, report_failures, patterns)


def _deliver(reader: _Reader, invoke: Any) -> int:
    as_reader: StreamReader = reader  # type: ignore[assignment]
    return deliver(as_reader, invoke, lambda: _NoContext())


class _NoContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def test_a_batch_of_removes_invokes_nothing_and_is_passed() -> None:
    calls: list[list[str]] = []
    reader = _Reader(_source(), [_record("REMOVE", n) for n in (1, 2, 3)])
    assert _deliver(reader, lambda event: calls.append(event["Records"])) == 3
    assert calls == []
    assert reader.after == {"shard": f"{3:021d}"}
    assert _deliver(reader, lambda event: calls.append(event["Records"])) == 0


def test_removes_are_left_out_of_a_batch_and_a_failure_is_read_again() -> None:
    records = [_record("REMOVE", 1), _record("INSERT", 2, "a"), _record("REMOVE", 3)]
    records += [_record("INSERT", 4, "b"), _record("REMOVE", 5)]
    reader = _Reader(_source(), records)
    handed: list[list[str]] = []

    def fail_the_second(event: dict[str, Any]) -> dict[str, Any]:
        sequences = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        handed.append(sequences)
        failed = [{"itemIdentifier": s} for s in sequences if s == f"{4:021d}"]
        return {"batchItemFailures": failed if len(handed) == 1 else []}

    assert _deliver(reader, fail_the_second) == 5
    assert handed == [[f"{2:021d}", f"{4:021d}"]]
    assert reader.after == {"shard": f"{3:021d}"}  # read again from the failed record
    assert _deliver(reader, fail_the_second) == 2
    assert handed[1] == [f"{4:021d}"]
    assert reader.after == {"shard": f"{5:021d}"}  # the trailing REMOVE passed too
