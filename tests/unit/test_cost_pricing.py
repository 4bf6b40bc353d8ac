"""benchmarks/cost.py's arithmetic: counts in, the dollars a hand computes out."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.cost import Snapshot
from benchmarks.cost_meter import Index, Meter, TableInfo, index_writes, item_size
from benchmarks.cost_prices import PRICES, SQS_CHUNK, Usage, chunks, gb_seconds, lines, total


def test_a_run_of_200_sends_is_priced_per_1000() -> None:
    # Given what 200 sends used: 250 API requests, 400 invocations, 30 GB-s on x86_64
    usages = [
        Usage("api", "apigw.http", 250),
        Usage("invocations", "lambda.requests", 400),
        Usage("deliver", "lambda.x86_64", 30.0),
    ]
    # When it is priced per 1,000 MMS
    found = {line.item: line for line in lines(usages, sends=200)}
    # Then each quantity is five times the run's, at the list price
    assert found["api"].per_1000 == pytest.approx(1250)
    assert found["api"].cost == pytest.approx(1250 * 1.00 / 1_000_000)
    assert found["invocations"].cost == pytest.approx(2000 * 0.20 / 1_000_000)
    assert found["deliver"].cost == pytest.approx(150 * 0.0000166667)
    assert total(found.values()) == pytest.approx(0.00125 + 0.0004 + 0.002500005)
    # And the largest comes first
    assert lines(usages, sends=200)[0].item == "deliver"


def test_lambda_gb_seconds_and_the_arm64_price() -> None:
    # 1,500 billed ms at 1769 MB is 2.5913 GB-s
    assert gb_seconds(1500, 1769) == pytest.approx(1.5 * 1769 / 1024)
    arm, x86 = PRICES["lambda.arm64"].each, PRICES["lambda.x86_64"].each
    assert 1 - arm / x86 == pytest.approx(0.2, abs=0.001)


def test_payloads_are_metered_in_chunks() -> None:
    assert chunks(0, SQS_CHUNK) == 1
    assert chunks(SQS_CHUNK, SQS_CHUNK) == 1
    assert chunks(SQS_CHUNK + 1, SQS_CHUNK) == 2
    # A 2.5 KB item costs 3 WRU, and 1 RRU when read strongly consistent
    assert chunks(2560, 1024) == 3
    assert chunks(2560, 4096) == 1


def test_item_sizes_follow_dynamodbs_rules() -> None:
    # Names count, strings by UTF-8 bytes, numbers by digit pairs plus one
    assert item_size({"id": {"S": "abc"}}) == 2 + 3
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"é": {"S": "é"}}) == 2 + 2
    assert item_size({"m": {"M": {"k": {"BOOL": True}}}}) == 1 + 3 + 1 + 1 + 1
    assert item_size(None) == 0


def test_a_keys_only_index_is_written_when_its_key_is() -> None:
    index = Index("by-settle-by", ("sweep_shard", "settle_by"), "KEYS_ONLY")
    old = {"send_id": {"N": "1"}, "sweep_shard": {"S": "3"}, "settle_by": {"N": "100"}}
    moved = {**old, "settle_by": {"N": "200"}}
    settled = {"send_id": {"N": "1"}, "doc": {"S": "x"}}
    assert index_writes(index, ("send_id",), None, old) == 1  # put into the index
    assert index_writes(index, ("send_id",), old, {**old, "doc": {"S": "y"}}) == 0
    assert index_writes(index, ("send_id",), old, moved) == 2  # a delete and a put
    assert index_writes(index, ("send_id",), old, settled) == 1  # leaves the index
    assert index_writes(index, ("send_id",), settled, settled) == 0


def test_the_templates_count_once_and_the_sends_scale() -> None:
    # Given 5 templates that cost 10 requests, and 200 sends that cost 400 more
    templates = Snapshot(counts=Counter({"api_requests": 10}))
    ended = Snapshot(counts=Counter({"api_requests": 410}))
    sent = ended.combine(templates, -1.0)
    # Then 1,000 sends and their templates cost 10 + 2,000
    assert templates.combine(sent, 1000 / 200).counts["api_requests"] == pytest.approx(2010)


def test_a_condition_check_is_billed_as_a_transactional_write_of_its_item() -> None:
    # Given a table with an ALL-projected index, and a 1.5 KB item in it
    tables = {"t": TableInfo(("id",), (Index("by-x", ("x",), "ALL"),))}
    meter = Meter(tables, "123456789012", "us-east-1")
    stored = {"id": {"S": "1"}, "x": {"S": "a"}, "doc": {"S": "d" * 1500}}
    key = {"id": {"S": "1"}}
    # When a transaction checks it and puts a new 1.5 KB item beside it
    new = {"id": {"S": "2"}, "x": {"S": "b"}, "doc": {"S": "e" * 1500}}
    before = [
        ("t", key, None, "check", stored),
        ("t", {"id": {"S": "2"}}, new, "transaction", None),
    ]
    meter.count_dynamodb("Fn", "TransactWriteItems", {}, {}, before)
    # Then the check costs 2 x 2 WRU and writes no index; the put 2 x 2 WRU and its index 2
    assert meter.units[("Fn", "dynamodb.wru:t")] == 8
    assert meter.units[("Fn", "dynamodb.wru:t/by-x")] == 2
