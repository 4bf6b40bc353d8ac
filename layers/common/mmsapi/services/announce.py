"""The facts customers are told about, as postbacks (docs/postbacks.md).

A postback goes through the outbox (store/outbox.py), never straight to the bus: the
`*_postback` builders make one, and the store writes it in the transaction of the state
change that caused it (`ctx.sends.save(send, ..., postback=send_postback(...))`), so
that a postback is never lost after its state was saved, nor told for a state that was
not. The outbox relay publishes it (services/outbox.py). Its id comes from the message
and the code: the same on every retry.

`announce_*` write a postback alone, for facts with no state change of their own (a
refused DDM).
"""

from __future__ import annotations

from datetime import UTC, datetime

from mmsapi.media.types import MediaKind
from mmsapi.models import Send, Template
from mmsapi.services.context import Context
from mmsapi.store.outbox import Postback, send_postback_id, template_postback_id
from mmsapi.tracking import tracking_id

READY_EVENT = "TemplateReady"
FAILED_EVENT = "EncodingFailed"
# Postback code and the field naming the failed file, per kind (docs/postbacks.md#codes).
FAILURE_CODES: dict[MediaKind, tuple[str, str]] = {
    MediaKind.AUDIO: ("E002", "audio-name"),
    MediaKind.VIDEO: ("E003", "video-name"),
    MediaKind.IMAGE: ("E004", "image-name"),
}
# The same failures of a sendMMS template (its one send fails with it).
SEND_FAILURE_CODES: dict[MediaKind, str] = {MediaKind.AUDIO: "E012", MediaKind.VIDEO: "E013"}
SEND_EVENT = "SendStatus"


def _fields(template: Template) -> dict[str, str]:
    fields = {"mms-id": str(template.mms_id)}
    if template.client_reference:
        fields["client-reference"] = template.client_reference
    return fields


def ready_postback(template: Template) -> Postback:
    """N003: the template is saved, encoded and usable."""
    code = "N003"
    return Postback(
        id=template_postback_id(template.mms_id, code),
        detail_type=READY_EVENT,
        detail={"code": code, "account_id": template.account_id, "fields": _fields(template)},
    )


def failure_postback(
    template: Template,
    kind: MediaKind,
    source_url: str,
    send_fields: dict[str, str] | None = None,
) -> Postback:
    """E002/E003/E004 (E012/E013 for sendMMS): encoding of one file failed, naming the
    file as the client gave it. (A sendMMS template has one send: the template's id and
    the code name the postback.)"""
    code, name_field = FAILURE_CODES[kind]
    if send_fields is not None:
        code = SEND_FAILURE_CODES.get(kind, code)
    fields = {**_fields(template), name_field: source_url, **(send_fields or {})}
    return Postback(
        id=template_postback_id(template.mms_id, code),
        detail_type=FAILED_EVENT,
        detail={"code": code, "account_id": template.account_id, "fields": fields},
    )


def send_postback(
    send: Send,
    code: str,
    status: str,
    *,
    sent_as: str | None = None,
    details: str | None = None,
    handset: str | None = None,
) -> Postback:
    """N101/N102/E101/E102/N202/E202/E999 (and the DDM's N501/N502/E501/E502) of one send."""
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
    if send.carrier_message_id:  # the carrier's id of the message: 1.3's AGGREGATORID
        fields["aggregator-id"] = send.carrier_message_id
    if send.client_reference:
        fields["client-reference"] = send.client_reference
    return Postback(
        id=send_postback_id(send.send_id, code),
        detail_type=SEND_EVENT,
        detail={"code": code, "account_id": send.account_id, "fields": fields},
    )


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
    """A send's postback alone (prefer send_postback in the send's own save)."""
    postback = send_postback(send, code, status, sent_as=sent_as, details=details, handset=handset)
    ctx.outbox.put(postback)
