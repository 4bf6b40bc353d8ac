"""make local's snapshot: binary attributes (a send's compressed document), objects
with their headers under any key, and one failing resource never stops the rest."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import boto3
from moto import mock_aws

from local.persistence import BUCKET, TABLE, LocalState, _unwire, _wire
from local.stack import Stack


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


def test_objects_keep_their_headers_any_key_and_a_failing_table_spares_the_rest(
    tmp_path: Path,
) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="media")
        long_key = "mo/acct/" + "k" * 300  # longer than a file name may be
        s3.put_object(
            Bucket="media",
            Key=long_key,
            Body=b"\x89PNG",
            ContentType="image/png",
            ContentDisposition='attachment; filename="IMG_0001.png"',
            Metadata={"link-hash": "ab"},
        )
        # A table that does not exist: its save fails, the bucket is saved all the same
        resources = {"Media": {"Type": BUCKET}, "Gone": {"Type": TABLE}}
        stack = Stack(
            name="s",
            template={"Resources": resources},
            template_dir=tmp_path,
            parameters={},
            physical={"Media": "media", "Gone": "no-such-table"},
        )
        LocalState(stack, tmp_path).save()
        s3.delete_object(Bucket="media", Key=long_key)
        assert LocalState(stack, tmp_path).restore() == (0, 1)
        got = s3.get_object(Bucket="media", Key=long_key)
    assert got["Body"].read() == b"\x89PNG"
    assert got["ContentType"] == "image/png"
    assert got["ContentDisposition"] == 'attachment; filename="IMG_0001.png"'
    assert got["Metadata"] == {"link-hash": "ab"}
    assert not list((tmp_path / "state").rglob("*.partial"))
