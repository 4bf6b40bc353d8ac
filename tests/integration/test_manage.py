"""deleteMMSID and getMMSTemplates against the emulated AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from local.stack import Stack
from mmsapi.services.accounts import create_account
from mmsapi.store import aws
from tests.conftest import Client
from tests.integration.helpers import answer, bucket_keys
from tests.media import photo_jpeg


def save(client: Client, name: str, slides: int = 1, image_url: str | None = None) -> int:
    image = f"<image><url>{image_url}</url></image>" if image_url else ""
    body = "".join(
        f"<slide>{image}<message-text>s{i}</message-text></slide>" for i in range(slides)
    )
    got = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key>"
            f"<name>{name}</name><message-subject>Subj {name}</message-subject>{body}</request>"
        )
    )
    assert got["status"] == "Success", got
    return int(got["mms-id"])


def action(client: Client, name: str, fields: str = "") -> bytes:
    return client.post(
        f"<request><action>{name}</action><api-key>{client.api_key}</api-key>{fields}</request>"
    )


def test_delete_removes_template_and_every_file(
    client: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given a saved template with an image (original + adapted in S3)
    httpserver.expect_request("/p.jpg").respond_with_data(photo_jpeg(), content_type="image/jpeg")
    mms_id = save(client, "promo", image_url=httpserver.url_for("/p.jpg"))
    assert len(bucket_keys(stack)) == 2
    # When it is deleted
    got = answer(action(client, "deleteMMSID", f"<mms-id>{mms_id}</mms-id>"))
    # Then the answer echoes the id, and nothing of it is left
    assert got == {"status": "Success", "mms-id": str(mms_id)}
    assert bucket_keys(stack) == []
    assert client.ctx.templates.get(mms_id) is None
    # And deleting again, or an unknown id, is E241
    assert (
        answer(action(client, "deleteMMSID", f"<mms-id>{mms_id}</mms-id>"))["error-code"] == "E241"
    )


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("", "E620"),
        ("<mms-id></mms-id>", "E620"),
        ("<mms-id>abc</mms-id>", "E241"),
        ("<mms-id>99999999999999999999</mms-id>", "E241"),
    ],
)
def test_delete_needs_a_valid_id(client: Client, field: str, code: str) -> None:
    assert answer(action(client, "deleteMMSID", field))["error-code"] == code


def test_another_accounts_template_cannot_be_deleted(client: Client) -> None:
    mms_id = save(client, "mine")
    _, other_key = create_account(client.ctx.accounts, "other")
    got = answer(
        client.post(
            f"<request><action>deleteMMSID</action><api-key>{other_key}</api-key>"
            f"<mms-id>{mms_id}</mms-id></request>"
        )
    )
    assert got["error-code"] == "E241"
    assert client.ctx.templates.get(mms_id) is not None


def test_templates_are_listed_newest_first_with_paging(client: Client) -> None:
    # Given three templates saved one after another
    ids = [save(client, f"t{i}", slides=i + 1) for i in range(3)]
    # When the first page of two is asked
    root = etree.fromstring(
        action(
            client,
            "getMMSTemplates",
            "<page-number>1</page-number><items-per-page>2</items-per-page>",
        )
    )
    # Then the totals and the newest two come back
    assert root.findtext("total-results") == "3"
    assert root.findtext("items-per-page") == "2"
    rows = root.findall("mms-template")
    assert [int(r.findtext("mms-id") or 0) for r in rows] == [ids[2], ids[1]]
    assert rows[0].findtext("mms-name") == "t2"
    assert rows[0].findtext("mms-subject") == "Subj t2"
    assert rows[0].findtext("total-slides") == "3"
    assert rows[0].findtext("mms-size") == "0"
    # And the second page holds the oldest
    second = etree.fromstring(
        action(
            client,
            "getMMSTemplates",
            "<page-number>2</page-number><items-per-page>2</items-per-page>",
        )
    )
    assert [r.findtext("mms-id") for r in second.findall("mms-template")] == [str(ids[0])]


def test_start_date_filters_and_deleted_templates_are_left_out(client: Client) -> None:
    kept = save(client, "kept")
    gone = save(client, "gone")
    answer(action(client, "deleteMMSID", f"<mms-id>{gone}</mms-id>"))
    root = etree.fromstring(action(client, "getMMSTemplates"))
    assert [r.findtext("mms-id") for r in root.findall("mms-template")] == [str(kept)]
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    later = etree.fromstring(
        action(client, "getMMSTemplates", f"<start-date>{future}</start-date>")
    )
    assert later.findtext("total-results") == "0"
    assert later.findtext("start-date") == future


def test_legacy_listing_uses_uppercase_names(client: Client) -> None:
    save(client, "x")
    root = etree.fromstring(
        client.post(
            f"<REQUEST><ACTION>getMMSTemplates</ACTION><API_KEY>{client.api_key}</API_KEY>"
            "</REQUEST>"
        )
    )
    assert root.findtext("TOTALRESULTS") == "1"
    assert root.find("MMSTEMPLATE/MMSNAME") is not None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ("<page-number>0</page-number>", "E212"),
        ("<page-number>-1</page-number>", "E212"),
        ("<page-number>one</page-number>", "E212"),
        ("<items-per-page>0</items-per-page>", "E213"),
        ("<items-per-page>100000</items-per-page>", "E213"),
        ("<start-date>yesterday</start-date>", "E214"),
        ("<start-date>2024-13-45</start-date>", "E214"),
    ],
)
def test_listing_parameters_are_checked(client: Client, fields: str, code: str) -> None:
    assert answer(action(client, "getMMSTemplates", fields))["error-code"] == code


def test_a_listing_reads_the_documents_of_its_page_only(client: Client) -> None:
    # Given twelve templates, and every DynamoDB answer watched
    ids = [save(client, f"t{i}") for i in range(12)]
    documents: list[int] = []

    def count_documents(parsed: dict[str, Any], **_: Any) -> None:
        items = parsed.get("Items", []) + [
            item for found in parsed.get("Responses", {}).values() for item in found
        ]
        documents.append(sum(1 for item in items if "doc" in item))

    events = aws.dynamodb().meta.events
    events.register("after-call.dynamodb", count_documents)
    try:
        # When the second page of three is listed
        root = etree.fromstring(
            action(
                client,
                "getMMSTemplates",
                "<page-number>2</page-number><items-per-page>3</items-per-page>",
            )
        )
    finally:
        events.unregister("after-call.dynamodb", count_documents)
    # Then the page is right, and only its three documents were read
    assert root.findtext("total-results") == "12"
    assert [int(r.findtext("mms-id") or 0) for r in root.findall("mms-template")] == ids[8:5:-1]
    assert sum(documents) == 3
