"""The facts about templates that customers are told (published on the event bus)."""

from __future__ import annotations

from datetime import UTC, datetime

from mmsapi.media.types import MediaKind
from mmsapi.models import Send, Template
from mmsapi.services.context import Context
from mmsapi.tracking import tracking_id

READY_EVENT = "TemplateReady"
FAILED_EVENT = "EncodingFailed"
# Postback code and the field naming the failed file, per kind (API-NOTES §5, §7).
FAILURE_CODES: dict[MediaKind, tuple[str, str]] = {
    MediaKind.AUDIO: ("E002", "audio-name"),
    MediaKind.VIDEO: ("E003", "video-name"),
    MediaKind.IMAGE: ("E004", "image-name"),
}
# The same failures of a sendMMS template (its one send fails with it).
SEND_FAILURE_CODES: dict[MediaKind, str] = {MediaKind.AUDIO: "E012", MediaKind.VIDEO: "E013"}


def _fields(template: Template) -> dict[str, str]:
    fields = {"mms-id": str(template.mms_id)}
    if template.client_reference:
        fields["client-reference"] = template.client_reference
    return fields


def announce_ready(ctx: Context, template: Template) -> None:
    """N003: the template is saved, encoded and usable."""
    ctx.events.publish(
        READY_EVENT,
        {"code": "N003", "account_id": template.account_id, "fields": _fields(template)},
    )


def announce_failure(
    ctx: Context,
    template: Template,
    kind: MediaKind,
    source_url: str,
    send_fields: dict[str, str] | None = None,
) -> None:
    """E002/E003/E004 (E012/E013 for sendMMS): encoding of one file failed, naming the
    file as the client gave it."""
    code, name_field = FAILURE_CODES[kind]
    if send_fields is not None:
        code = SEND_FAILURE_CODES.get(kind, code)
    fields = {**_fields(template), name_field: source_url, **(send_fields or {})}
    ctx.events.publish(
        FAILED_EVENT, {"code": code, "account_id": template.account_id, "fields": fields}
    )


SEND_EVENT = "SendStatus"


def announce_send(
    ctx: Context,
    send: Send,
    code: str,
    status: str,
    *,
    sent_as: str | None = None,
    details: str | None = None,
    handset: str | None = None,
) -> None:
    """N101/N102/E101/E102/N202/E202 (and the DDM's N501/N502/E501/E502) of one send."""
    fields = {
        "status": status,
        "mms-id": str(send.mms_id),
        "from": send.sender,
        "to": send.to,
        "tracking-id": tracking_id(send.send_id),
        "operator-id": send.operator_id,
        "timestamp": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
    }
    if sent_as:
        fields["sent-as"] = sent_as
    if details:
        fields["status-details"] = details
    if handset:
        fields["handset"] = handset
    if send.client_reference:
        fields["client-reference"] = send.client_reference
    ctx.events.publish(SEND_EVENT, {"code": code, "account_id": send.account_id, "fields": fields})
