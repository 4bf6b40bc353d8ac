"""Merge tags and the sizes of a send: every field has a documented limit, checked at the
API, and filling is bounded even for what was stored before the limits existed."""

from __future__ import annotations

import json
import tracemalloc

from mmsapi import records
from mmsapi.models import (
    CustomText,
    DdmRequest,
    Limits,
    Send,
    Template,
    TemplateSlide,
    TemplateStatus,
)
from mmsapi.services.personalize import subject_for, texts_for
from mmsapi.store.sends import DOC, SendStore
from mmsapi.text import (
    MAX_DATA_ENTRIES,
    MAX_DATA_NAME_CHARS,
    MAX_DATA_VALUE_CHARS,
    MAX_FALLBACK_CHARS,
    MAX_FILLED_CHARS,
    MAX_SUBJECT_SOURCE_CHARS,
    fill_merge_tags,
    filled_length,
)
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.helpers import answer
from tests.integration.test_send import saved, send_xml

MAX_ITEM_BYTES = 350_000  # well below DynamoDB's 400 KB
WIDEST = "\U0001f600"  # 4 bytes in UTF-8: the widest a character gets in a stored item


def _data(values: dict[str, str]) -> str:
    return "<data>" + "".join(f"<{k}>{v}</{k}>" for k, v in values.items()) + "</data>"


def test_the_merge_tag_bomb_of_the_issue_is_refused_at_the_api(client: Client) -> None:
    # Given 2,000 {$a} in custom-subject and a 100 KB value for a (a 200 MB subject before)
    mms_id = saved(client)
    body = send_xml(client, mms_id, {"custom-subject": "{$a}" * 2000}, _data({"a": "x" * 100_000}))

    got = answer(client.post(body))

    assert got["status"] == "Failure"
    assert got["error-code"] == "E100"
    assert "data" in got["error-info"]


def test_a_subject_that_fills_past_its_limit_is_e314(client: Client) -> None:
    # Every value is legal, but 100 tags of 1,000 characters fill 100,000
    mms_id = saved(client)
    value = "x" * MAX_DATA_VALUE_CHARS
    body = send_xml(client, mms_id, {"custom-subject": "{$a}" * 100}, _data({"a": value}))

    got = answer(client.post(body))

    assert got["error-code"] == "E314"
    assert "filled subject" in got["error-info"]


def test_a_custom_subject_over_its_limit_is_e314(client: Client) -> None:
    mms_id = saved(client)
    body = send_xml(client, mms_id, {"custom-subject": "s" * (MAX_SUBJECT_SOURCE_CHARS + 1)})

    assert answer(client.post(body))["error-code"] == "E314"


def test_a_custom_text_that_fills_past_the_text_limit_is_e228(client: Client) -> None:
    mms_id = saved(client)
    custom = "<custom-text><value>" + "{$a}" * 6 + "</value><slide>2</slide></custom-text>"
    body = send_xml(client, mms_id, extra=custom + _data({"a": "y" * MAX_DATA_VALUE_CHARS}))

    got = answer(client.post(body))

    assert got["error-code"] == "E228"
    assert "slide 2" in got["error-info"]


def test_too_many_data_values_or_a_long_name_are_e100(client: Client) -> None:
    mms_id = saved(client)
    many = _data({f"k{i}": "v" for i in range(MAX_DATA_ENTRIES + 1)})
    long_name = _data({"n" * (MAX_DATA_NAME_CHARS + 1): "v"})

    assert answer(client.post(send_xml(client, mms_id, extra=many)))["error-code"] == "E100"
    assert answer(client.post(send_xml(client, mms_id, extra=long_name)))["error-code"] == "E100"


def test_a_fallback_text_over_one_sms_is_e100_at_send_and_at_save(client: Client) -> None:
    mms_id = saved(client)
    long_text = "f" * (MAX_FALLBACK_CHARS + 1)

    sent = answer(client.post(send_xml(client, mms_id, {"fallback-sms-text": long_text})))
    saved_answer = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>n</name>"
            f"<fallback-sms-text>{long_text}</fallback-sms-text>"
            "<slide><message-text>one</message-text></slide></request>"
        )
    )

    assert sent["error-code"] == "E100"
    assert "fallback-sms-text" in sent["error-info"]
    assert saved_answer["error-code"] == "E100"


def test_the_largest_legal_send_is_accepted_and_its_item_is_small(client: Client) -> None:
    # Given every field at its limit: 20 values of 1,000 characters, a 500-character
    # subject, both slides' custom texts at 5,000 and a 1,400-character fallback
    mms_id = saved(client)
    limit = client.account.limits.max_text_chars
    data = {f"k{i}": "v" * MAX_DATA_VALUE_CHARS for i in range(MAX_DATA_ENTRIES)}
    texts = "".join(
        f"<custom-text><value>{'t' * limit}</value><slide>{n}</slide></custom-text>" for n in (1, 2)
    )
    body = send_xml(
        client,
        mms_id,
        {
            "custom-subject": "s" * MAX_SUBJECT_SOURCE_CHARS,
            "fallback-sms-text": "f" * MAX_FALLBACK_CHARS,
        },
        texts + _data(data),
    )

    got = answer(client.post(body))

    assert got["status"] == "Success", got
    send_id = parse_tracking_id(got["tracking-id"])
    assert send_id is not None
    send = client.ctx.sends.get(send_id)
    assert send is not None
    assert _item_bytes(send) < MAX_ITEM_BYTES


def _item_bytes(send: Send, *, incompressible: bool = False) -> int:
    """The size of a send's item as DynamoDB counts it: names, UTF-8 values, binary
    values by their bytes. With `incompressible`, its compressed document at zlib's
    compressBound (the most zlib ever makes of it), whatever the values are made of."""
    item = SendStore(table="t", carrier_table="c")._item(send)
    size = 0
    for name, typed in item.items():
        value = next(iter(typed.values()))
        size += len(name) + (len(value) if isinstance(value, bytes) else len(value.encode()))
    if incompressible:
        raw = len(records.to_json(send).encode())
        bound = raw + (raw >> 12) + (raw >> 14) + (raw >> 25) + 13
        size += bound - len(item[DOC]["B"])
    return size


def _worst_send(limits: Limits) -> Send:
    """A send with every field at its documented limit, every character 4 bytes wide."""
    text = WIDEST * limits.max_text_chars
    return Send(
        send_id=2**63 - 1,
        account_id="a" * 64,
        mms_id=2**63 - 1,
        to="1" * 15,
        sender="9" * 15,
        requested_from="9" * 15,
        service_id="s" * 64,
        operator_id="9" * 19,
        fallback_sms_text=WIDEST * MAX_FALLBACK_CHARS,
        custom_subject=WIDEST * MAX_SUBJECT_SOURCE_CHARS,
        custom_texts=[CustomText(slide=n, value=text) for n in range(1, limits.max_slides + 1)],
        data={
            f"{i:02d}" + WIDEST * (MAX_DATA_NAME_CHARS - 2): WIDEST * MAX_DATA_VALUE_CHARS
            for i in range(MAX_DATA_ENTRIES)
        },
        ddm=DdmRequest(text=text, subject=WIDEST * MAX_SUBJECT_SOURCE_CHARS),
        client_reference=WIDEST * 64,
        carrier_message_id="m" * 256,
        handset="h" * 64,
    )


def test_the_stored_send_item_is_bounded_below_dynamodbs_400_kb() -> None:
    # Given the documented limits (the default account's), When the widest send is stored
    size = _item_bytes(_worst_send(Limits()), incompressible=True)

    # Then its size as DynamoDB counts it stays well below 400 KB, even if its document
    # did not compress at all
    print(f"worst send item: {size} bytes")  # the figure, with -s
    assert size < MAX_ITEM_BYTES, size


def test_filling_stops_at_its_limit_without_building_the_whole() -> None:
    # Given the issue's bomb as it may be stored from before the limits
    text, data = "{$a}" * 2000, {"a": "x" * 100_000}
    assert filled_length(text, data) == 200_000_000

    tracemalloc.start()
    try:
        filled = fill_merge_tags(text, data, limit=500)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert filled == "x" * 500
    assert peak < 2_000_000


def test_a_stored_bomb_personalises_within_the_caps() -> None:
    # A send stored before the limits: delivery and the hosted page fill it bounded
    template = Template(
        mms_id=1,
        account_id="a",
        name="n",
        status=TemplateStatus.READY,
        slides=[TemplateSlide(text="{$a}" * 2000)],
    )
    send = Send(
        send_id=1,
        account_id="a",
        mms_id=1,
        to="14044790000",
        sender="28444",
        requested_from="28444",
        service_id="12345",
        custom_subject="{$a}" * 2000,
        data={"a": "x" * 100_000},
    )

    assert len(subject_for(template, send)) == 80
    assert len(texts_for(template, send)[0] or "") == MAX_FILLED_CHARS


def test_fill_keeps_defaults_and_text_around_tags() -> None:
    text = "Hi {$First|there}, code {$code} {$none|}!"
    data = {"first": "Ann", "code": "X1"}

    assert fill_merge_tags(text, data) == "Hi Ann, code X1 !"
    assert filled_length(text, data) == len("Hi Ann, code X1 !")
    assert fill_merge_tags(text, data, limit=8) == "Hi Ann, "
    assert fill_merge_tags("{$x|default}", {}) == "default"
    assert json.dumps(fill_merge_tags("", data)) == '""'
