"""make local's snapshot keeps binary attributes (a send's compressed document)."""

from __future__ import annotations

import json
import zlib

from local.persistence import _unwire, _wire


def test_an_item_with_binary_values_comes_back_as_it_was_saved() -> None:
    # Given an item with binary values at the top and nested in a map and a list
    item = {
        "send_id": {"N": "100001"},
        "docz": {"B": zlib.compress(b'{"status":"queued"}')},
        "parts": {"M": {"raw": {"B": b"\x00\xff"}, "set": {"BS": [b"a", b"\x80"]}}},
        "list": {"L": [{"B": b"\x01"}, {"S": "text"}]},
    }
    # When it is written as a snapshot line and read back
    line = json.dumps(_wire(item))
    # Then the line is JSON text, and the item is the same, bytes and all
    assert json.loads(line)["docz"]["B"].isascii()
    assert _unwire(json.loads(line)) == item
