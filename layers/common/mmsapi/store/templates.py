"""The templates table: one item per saved MMS, listed per account newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.models import Template, TemplateStatus, TemplateSummary
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo

ACCOUNT_INDEX = "by-account"


def _created_key(template: Template) -> str:
    # ISO timestamps sort as text; the id breaks ties between templates of one instant.
    return f"{template.created_at.isoformat(timespec='microseconds')}#{template.mms_id:020d}"


class TemplateStore:
    def __init__(self, table: str | None = None) -> None:
        self.table = table or get_settings().templates_table

    def _item(self, template: Template) -> dict[str, Any]:
        return {
            "mms_id": {"N": str(template.mms_id)},
            "account_id": {"S": template.account_id},
            "created_key": {"S": _created_key(template)},
            "status": {"S": template.status.value},
            "doc": {"S": template.model_dump_json()},
        }

    def create(self, template: Template) -> None:
        dynamo.create_item(self.table, self._item(template), "mms_id", what="template")

    def replace(self, template: Template, expected: TemplateStatus) -> bool:
        """Overwrite a template if its status is still `expected`; False if it is not."""
        return dynamo.put_item(
            self.table,
            self._item(template),
            what="template",
            ConditionExpression="#s = :expected",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":expected": {"S": expected.value}},
        )

    def get(self, mms_id: int) -> Template | None:
        item = dynamo.get_item(self.table, {"mms_id": {"N": str(mms_id)}}, what="template")
        return Template.model_validate_json(item["doc"]["S"]) if item else None

    def mark_deleting(self, mms_id: int, account_id: str) -> bool:
        """Hide a template from every reader before its files go; False if not the account's."""
        try:
            aws.dynamodb().update_item(
                TableName=self.table,
                Key={"mms_id": {"N": str(mms_id)}},
                UpdateExpression="SET #s = :deleting",
                ConditionExpression="account_id = :a AND #s <> :deleting",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":a": {"S": account_id},
                    ":deleting": {"S": TemplateStatus.DELETING.value},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == dynamo.CONDITION_FAILED:
                return False
            raise DomainError(f"template update failed: {exc}") from exc
        return True

    def delete(self, mms_id: int) -> None:
        try:
            aws.dynamodb().delete_item(TableName=self.table, Key={"mms_id": {"N": str(mms_id)}})
        except ClientError as exc:
            raise DomainError(f"template delete failed: {exc}") from exc

    def page(
        self, account_id: str, since: datetime | None, page: int, per_page: int
    ) -> tuple[int, list[TemplateSummary]]:
        """Total visible templates and one page of them, newest first."""
        condition = "account_id = :a"
        values: dict[str, Any] = {
            ":a": {"S": account_id},
            ":deleting": {"S": TemplateStatus.DELETING.value},
        }
        if since is not None:
            condition += " AND created_key >= :since"
            values[":since"] = {"S": since.isoformat(timespec="microseconds")}
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": ACCOUNT_INDEX,
            "KeyConditionExpression": condition,
            "FilterExpression": "#s <> :deleting",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        first = (page - 1) * per_page
        total = 0
        rows: list[TemplateSummary] = []
        try:
            for answer in aws.dynamodb().get_paginator("query").paginate(**query):
                for item in answer["Items"]:
                    if first <= total < first + per_page:
                        rows.append(_summary(Template.model_validate_json(item["doc"]["S"])))
                    total += 1
        except ClientError as exc:
            raise DomainError(f"template listing failed: {exc}") from exc
        return total, rows


def _summary(template: Template) -> TemplateSummary:
    return TemplateSummary(
        mms_id=template.mms_id,
        name=template.name,
        subject=template.subject,
        created_at=template.created_at,
        total_slides=len(template.slides),
        size_bytes=template.size_bytes,
    )
