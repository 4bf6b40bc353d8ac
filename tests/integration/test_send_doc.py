"""A send's stored document: zlib-compressed as a Binary attribute (store/sends.py), so
each of its writes (a whole item each) is billed 1 WRU, not 2; items written before, with
the document as text, still load."""

from __future__ import annotations

from typing import Any

from pytest_httpserver import HTTPServer

from benchmarks.cost_meter import item_size
from local.aws_gate import acting_as
from local.stack import Stack
from mmsapi import records
from mmsapi.models import SendStatus
from mmsapi.services.deliver import deliver
from mmsapi.store import aws, dynamo
from mmsapi.store.sends import DOC, compress, send_of
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.conftest import Carrier
from tests.integration.helpers import answer
from tests.integration.test_send import saved, send_xml


def stored_item(client: Client, send_id: int) -> dict[str, Any]:
    got = aws.dynamodb().get_item(
        TableName=client.ctx.sends.table, Key={"send_id": {"N": str(send_id)}}
    )
    item: dict[str, Any] = got["Item"]
    return item


def test_a_sent_send_with_its_history_is_stored_under_one_kb(
    client: Client, stack: Stack, carrier: Carrier, httpserver: HTTPServer
) -> None:
    # Given a send with merge data and a client reference, sent as MMS (three steps kept)
    fields = {"client-reference": "order-2026-11-26-0001"}
    data = "<data><firstname>Bartholomew</firstname><city>Atlanta</city></data>"
    got = answer(client.post(send_xml(client, saved(client), fields, data)))
    assert got["status"] == "Success", got
    send_id = parse_tracking_id(got["tracking-id"]) or 0
    assert deliver(client.ctx, send_id) == "sent as MMS"
    # When its item is read as stored
    item = stored_item(client, send_id)
    send = send_of(item)
    # Then the document is compressed binary only, and the item under 1 KB: 1 WRU a write
    assert set(item[DOC]) == {"B"}
    assert "doc" not in item
    assert len(send.history) == 3
    assert len(records.to_json(send)) > 1024  # as text it would take 2 WRU a write
    assert item_size(item) < 1024, item_size(item)
    assert (send.status, send.client_reference) == (SendStatus.SENT, fields["client-reference"])
    assert client.ctx.sends.get(send_id) == send


def test_a_send_stored_with_its_document_as_text_loads_and_is_rewritten_compressed(
    client: Client, stack: Stack
) -> None:
    # Given a send stored before the document was compressed (text, "doc")
    got = answer(client.post(send_xml(client, saved(client))))
    send_id = parse_tracking_id(got["tracking-id"]) or 0
    current = client.ctx.sends.get(send_id)
    assert current is not None
    old = {k: v for k, v in stored_item(client, send_id).items() if k != DOC}
    aws.dynamodb().put_item(
        TableName=client.ctx.sends.table,
        Item={**old, "doc": {"S": records.to_json(current)}},
    )
    # When it is read, Then it is the same send
    before = client.ctx.sends.get(send_id)
    assert before == current
    assert before is not None
    # And its next write stores the compressed form only
    before.status = SendStatus.SUBMITTING
    assert client.ctx.sends.save(before, expected=SendStatus.QUEUED)
    item = stored_item(client, send_id)
    assert "doc" not in item
    assert send_of(item).status is SendStatus.SUBMITTING


def test_a_retried_create_of_a_compressed_send_is_one_create(client: Client, stack: Stack) -> None:
    # Given a new send item whose first write landed (its answer lost on the way back)
    got = answer(client.post(send_xml(client, saved(client))))
    send = client.ctx.sends.get(parse_tracking_id(got["tracking-id"]) or 0)
    assert send is not None
    send.send_id += 1_000
    item = client.ctx.sends._item(send)
    with acting_as("ApiFunction"):
        dynamo.create_item(client.ctx.sends.table, item, "send_id", what="send")
        # When the retry writes it again, its document compressed anew (deterministic),
        # Then it is the same create, not an error
        again = {**item, DOC: {"B": compress(send)}}
        dynamo.create_item(client.ctx.sends.table, again, "send_id", what="send")
    assert send_of(stored_item(client, send.send_id)) == send
