"""mmsapi/records.py: records to stored JSON and back, in the exact shape pydantic wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from mmsapi import records
from mmsapi.media.types import MediaKind
from mmsapi.models import (
    Account,
    CustomText,
    DdmRequest,
    Dialect,
    Limits,
    MediaRef,
    RateLimits,
    Rendition,
    SaveRequest,
    Send,
    SendRequest,
    SendStatus,
    SendStep,
    Shortcode,
    SlideSpec,
    StoredMedia,
    Template,
    TemplateSlide,
    TemplateStatus,
    TemplateSummary,
)
from mmsapi.records import RecordError

AT = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)

# Documents as pydantic's model_dump_json wrote them (copied from its output): compact,
# UTF-8, UTC times ending in "Z", enums and dict keys as their values, floats as floats.
OLD_ACCOUNT = (
    '{"account_id":"acme","name":"Acmé","key_hash":"ab12","enabled":true,'
    '"shortcodes":[{"code":"28444","country":"US","default":true}],'
    '"default_service_id":"1","postback_url":"https://p.example/x",'
    '"postback_dialect":"legacy","postback_secret":"s",'
    '"allowed_actions":["saveMMS","sendMMS"],"ip_allowlist":["10.0.0.0/8"],'
    '"limits":{"max_slides":8,"max_text_chars":5000,"max_subject_chars":80,'
    '"max_bytes":{"image":26214400,"video":209715200},"image_budget_bytes":614400,'
    '"image_max_dimension":1600,"video_budget_bytes":614400,"audio_budget_bytes":307200,'
    '"max_media_seconds":30},"created_at":"2025-03-04T05:06:07.890000Z",'
    '"service_ids":[],"operator_ids":["310410"],"blocked_numbers":[],'
    '"rate_limits":{"throughput":{"sendMMS":5},"min_interval_seconds":0.5,'
    '"daily_quota":1000000},"inbox_keywords":["stop"]}'
)
OLD_SEND = (
    '{"send_id":1,"account_id":"a","mms_id":2,"to":"14044790000","sender":"28444",'
    '"requested_from":"28444","service_id":"4","operator_id":"","fallback_sms_text":"",'
    '"custom_subject":null,"custom_texts":[{"slide":1,"value":"x"}],"data":{"name":"Zoë"},'
    '"ddm":{"text":"t","subject":"Device Discovery","timeout_minutes":5,"force":false},'
    '"ddm_task_token":"","discovered":false,"client_reference":"","status":"sent",'
    '"sent_as":"MMS","carrier_message_id":"m1","handset":"","view_secret":"v",'
    '"created_at":"2025-03-04T05:06:07Z","updated_at":"2025-03-04T05:06:07.890000Z",'
    '"history":[{"at":"2025-03-04T05:06:07.890000Z","status":"sent","sent_as":"MMS",'
    '"carrier_message_id":"m1","handset":"","postback":"N101","rendition":""}],'
    '"rendition":""}'
)

# The discovery workflow's task token: the DDM's wait is kept by a delayed queue message.
REMOVED = frozenset({"ddm_task_token"})


def every_record() -> list[object]:
    media = StoredMedia(
        kind=MediaKind.VIDEO,
        source_url="https://e.example/v.mp4",
        content_type="video/mp4",
        original_key="k",
        original_bytes=10,
        rendition_key="r",
        duration_seconds=12.5,
        renditions=[
            Rendition(key="r", content_type="video/3gpp", profile="p", codec="h263", bytes=9)
        ],
    )
    template = Template(
        mms_id=7,
        account_id="a",
        name="n",
        status=TemplateStatus.ENCODING,
        slides=[TemplateSlide(text="hi", media=[media]), TemplateSlide()],
        merge_tags=["a"],
        created_at=AT,
        single_send_id=3,
    )
    account = Account(
        account_id="a",
        name="n",
        key_hash="h",
        shortcodes=[Shortcode(code="1", default=True)],
        postback_dialect=Dialect.LEGACY,
        limits=Limits(max_bytes={MediaKind.IMAGE: 5}),
        rate_limits=RateLimits(throughput={"sendMMS": 3}, min_interval_seconds=1.5),
        created_at=AT,
    )
    send = Send(
        send_id=1,
        account_id="a",
        mms_id=7,
        to="1",
        sender="2",
        requested_from="2",
        service_id="s",
        custom_texts=[CustomText(slide=1, value="v")],
        ddm=DdmRequest(text="t", force=True),
        status=SendStatus.DELIVERED,
        history=[SendStep(at=AT, status=SendStatus.SENT, postback="N101")],
        created_at=AT.astimezone(timezone(timedelta(hours=2))),  # kept with its offset
        updated_at=AT,
    )
    save = SaveRequest(
        name="n",
        slides=[SlideSpec(number=1, media=[MediaRef(kind=MediaKind.IMAGE, url="u")])],
    )
    send_request = SendRequest(to="1", custom_texts=[("1", None), (None, "x")], data={"k": "v"})
    summary = TemplateSummary(
        mms_id=1, name="n", subject="s", created_at=AT, total_slides=1, size_bytes=2
    )
    return [template, account, send, save, send_request, summary]


@pytest.mark.parametrize("record", every_record(), ids=lambda r: type(r).__name__)
def test_every_record_comes_back_as_it_was_stored(record: object) -> None:
    # Given a record with nested records, enums, times, tuples and dicts
    # When it is stored as JSON and read back
    text = records.to_json(record)
    # Then it is the same record, and what was stored is plain JSON
    assert records.from_json(type(record), text) == record
    assert json.loads(text) == records.dump(record)


@pytest.mark.parametrize(("cls", "old"), [(Account, OLD_ACCOUNT), (Send, OLD_SEND)])
def test_documents_pydantic_wrote_read_back_and_are_written_byte_for_byte(
    cls: type[Any], old: str
) -> None:
    # Given a document in the shape the pydantic models stored
    # When it is read and written again
    record = records.from_json(cls, old)
    written = json.loads(records.to_json(record))
    # Then nothing is lost or spelt differently (fields added since are written too),
    # but for the fields removed since
    stored = {key: value for key, value in json.loads(old).items() if key not in REMOVED}
    kept = {key: written[key] for key in stored}
    assert kept == stored
    assert list(kept) == list(stored)  # in the same order
    assert not REMOVED & set(written)


def test_values_read_as_their_types() -> None:
    account = records.from_json(Account, OLD_ACCOUNT)
    assert account.postback_dialect is Dialect.LEGACY
    assert account.limits.max_bytes == {MediaKind.IMAGE: 26214400, MediaKind.VIDEO: 209715200}
    assert account.created_at == AT
    send = records.from_json(Send, OLD_SEND)
    assert send.history[0].status is SendStatus.SENT
    assert send.ddm == DdmRequest(text="t")
    assert records.load(SendRequest, {"custom_texts": [["1", None]]}).custom_texts == [("1", None)]


def test_old_items_take_defaults_and_unknown_keys_are_ignored() -> None:
    # Given an account stored before most fields existed, with a key no longer known
    old = {"account_id": "a", "name": "n", "key_hash": "h", "retired_field": 1}
    # When it is read
    account = records.load(Account, old)
    # Then the missing fields have their defaults
    assert account.rate_limits == RateLimits()
    assert account.limits == Limits()
    assert "retired_field" not in records.dump(account)


def test_numbers_as_dynamodb_gives_them() -> None:
    # DynamoDB's deserialiser gives Decimal; a whole float is a whole number
    limits = records.load(
        RateLimits, {"daily_quota": Decimal(6), "min_interval_seconds": Decimal("0.5")}
    )
    assert limits.daily_quota == 6
    assert isinstance(limits.daily_quota, int)
    assert limits.min_interval_seconds == 0.5
    assert records.load(RateLimits, {"daily_quota": 6.0}).daily_quota == 6
    # A float field written as an int is written back as a float, as pydantic did
    assert records.to_json(RateLimits(min_interval_seconds=2)) == (
        '{"throughput":{},"min_interval_seconds":2.0,"daily_quota":1000000}'
    )


@pytest.mark.parametrize(
    "doc",
    [
        '{"account_id":"a","name":"n"}',  # key_hash missing
        '{"account_id":"a","name":"n","key_hash":7}',
        '{"account_id":"a","name":"n","key_hash":"h","enabled":"yes"}',
        '{"account_id":"a","name":"n","key_hash":"h","postback_dialect":"klingon"}',
        '{"account_id":"a","name":"n","key_hash":"h","created_at":"yesterday"}',
        '{"account_id":"a","name":"n","key_hash":"h","rate_limits":{"daily_quota":1.5}}',
        '{"account_id":"a","name":"n","key_hash":"h","shortcodes":{"code":"1"}}',
        "[1, 2]",
        '{"account_id": "a", ',
    ],
)
def test_corrupt_documents_are_refused_with_a_clear_error(doc: str) -> None:
    with pytest.raises(RecordError, match="Account"):
        records.from_json(Account, doc)
    assert issubclass(RecordError, ValueError)


def test_records_compare_and_show_like_dataclasses() -> None:
    # == and repr are shared functions (records.record), not generated per class
    assert Shortcode(code="1") == Shortcode(code="1")
    assert Shortcode(code="1") != Shortcode(code="2")
    other: object = MediaRef(kind=MediaKind.IMAGE, url="1")
    assert Shortcode(code="1") != other
    assert repr(Shortcode(code="1")) == "Shortcode(code='1', country='US', default=False)"
    with pytest.raises(TypeError):
        hash(Shortcode(code="1"))
    with pytest.raises(AttributeError):
        Shortcode(code="1").typo = 1  # type: ignore[attr-defined]
