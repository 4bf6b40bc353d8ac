"""sendSavedMMS (and the sending half of sendMMS): check every field, record the send,
queue it, answer at once. Delivery runs behind the send queue (services/deliver.py).

A warm function's sendSavedMMS makes one AWS call (docs/actions.md#sendsavedmms): the
account comes from a copy under 0.5 s old (store/accounts.py), the ready template from
this function's copy under 0.5 s old (store/templates.py), and the send is written in
one TransactWriteItems with its "queue send" outbox item: the outbox relay
(services/outbox.py) puts it on the send queue. The tracking-id answered is that of a
stored send that will reach the queue, or, if the relay fails for good, its end (E999,
services/sweep.py). A template deleted in the copy's half second is never sent: delivery
reads it again and ends the send with E101 (services/deliver.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import phonenumbers

from mmsapi.errors import ApiError
from mmsapi.models import (
    Account,
    CustomText,
    DdmRequest,
    SaveRequest,
    Send,
    SendRequest,
    SendStatus,
    Template,
    TemplateStatus,
)
from mmsapi.numbers import ascii_digits, ascii_int, phone_digits
from mmsapi.rules import client_reference
from mmsapi.services.context import Context
from mmsapi.services.encode import release_waiting_send
from mmsapi.services.manage import delete_mms, parse_mms_id
from mmsapi.services.personalize import check_sizes
from mmsapi.services.save import save_mms
from mmsapi.settings import get_settings
from mmsapi.store.opt_outs import OptedOutError, OptOutStore

STATUS_DETAILS: Final = "MMS request accepted and queued for delivery"
MAX_DDM_TIMEOUT_MINUTES: Final = 24 * 60
MAX_OPERATOR_ID_DIGITS: Final = 19
TRUE_FALSE: Final = {
    "true": True,
    "yes": True,
    "1": True,
    "false": False,
    "no": False,
    "0": False,
    "": False,
}


def recipient(raw: str | None) -> tuple[str, str]:
    """(E.164 digits without '+', ISO country) of an international number; else E110."""
    digits = phone_digits(raw)
    if digits is None or not 8 <= len(digits) <= 15:
        raise ApiError("E110")
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        raise ApiError("E110") from None
    if not phonenumbers.is_valid_number(number):
        raise ApiError("E110")
    return digits, phonenumbers.region_code_for_number(number) or ""


def shortcode_for(account: Account, requested: str | None, country: str) -> str:
    """The shortcode to send from: the requested one if it serves the recipient's
    country, else the account's default shortcode of that country (docs/actions.md#sendsavedmms)."""
    codes = {s.code: s for s in account.shortcodes}
    chosen = codes.get((requested or "").strip())
    if chosen is None:
        raise ApiError("E111")
    if chosen.country == country:
        return chosen.code
    local = [s for s in account.shortcodes if s.country == country]
    if not local:
        raise ApiError("E111", detail=f"no shortcode of this account serves country {country}")
    return next((s for s in local if s.default), local[0]).code


def service_id_for(account: Account, raw: str | None, legacy: bool) -> str:
    value = (raw or "").strip()
    if not value and legacy:
        value = account.default_service_id  # the legacy dialect may leave SERVICEID out
    if not value or value not in {account.default_service_id, *account.service_ids} - {""}:
        raise ApiError("E627")
    return value


def operator_id_for(account: Account, raw: str | None, legacy: bool = False) -> str:
    if raw is None:
        return ""
    value = raw.strip()
    valid = ascii_digits(value) and len(value) <= MAX_OPERATOR_ID_DIGITS
    if legacy:  # 1.3's SPID is echoed, never refused (docs/legacy-1.3.md)
        return value if valid else ""
    if not valid:
        raise ApiError("E650")
    if account.operator_ids and value not in account.operator_ids:
        raise ApiError("E651")
    return value


def usable_template(ctx: Context, account: Account, raw_mms_id: str | None) -> Template:
    """The template to send (this function's copy if it has one: see accept_send)."""
    template = ctx.templates.ready(parse_mms_id(raw_mms_id))
    if template is None or template.account_id != account.account_id:
        raise ApiError("E241")
    if template.status is TemplateStatus.ENCODING:
        raise ApiError("E626")
    if template.status is not TemplateStatus.READY:
        # Failed encodings make the mms-id corrupted for good (docs/errors.md: E241).
        raise ApiError("E241", detail="its encoding failed" if template.failure_code else None)
    return template


def custom_texts(
    raw: list[tuple[str | None, str | None]], slides: int, max_chars: int
) -> list[CustomText]:
    texts: list[CustomText] = []
    for slide, value in raw:
        if slide is None or value is None:
            raise ApiError("E100", detail="custom-text needs both value and slide")
        number = ascii_int(slide, 1, slides)
        if number is None:
            raise ApiError(
                "E100", detail=f"custom-text slide {slide[:20]} is not a slide of the MMS"
            )
        # One text replaces one slide's (docs/actions.md#sendsavedmms): repeats would only grow the
        # send's item towards DynamoDB's 400 KB (an E503 before).
        if any(t.slide == number for t in texts):
            raise ApiError("E100", detail=f"custom-text for slide {number} is given twice")
        if len(value) > max_chars:
            raise ApiError("E228", x=max_chars)
        texts.append(CustomText(slide=number, value=value))
    return texts


def ddm_for(request: SendRequest) -> DdmRequest | None:
    given = (request.ddm_text, request.ddm_subject, request.ddm_timeout, request.ddm_force)
    if all(v is None for v in given):
        return None
    force = TRUE_FALSE.get((request.ddm_force or "").strip().lower())
    if force is None:
        raise ApiError("E100", detail="ddm-force accepts true or false")
    if not request.ddm_text:
        raise ApiError("E100", detail="ddm-message-text is required for a Device Discovery Message")
    timeout = ascii_int((request.ddm_timeout or "5").strip(), 1, MAX_DDM_TIMEOUT_MINUTES)
    if timeout is None:
        raise ApiError("E100", detail="ddm-message-timeout must be 1 to 1440 minutes")
    return DdmRequest(
        text=request.ddm_text,
        subject=request.ddm_subject or "Device Discovery",
        timeout_minutes=timeout,
        force=force,
    )


@dataclass(frozen=True)
class Addressing:
    to: str
    sender: str
    service_id: str
    operator_id: str


def check_addressing(account: Account, request: SendRequest, *, legacy: bool) -> Addressing:
    """The checks that need no template (E110, E111, E114, E627, E650/E651), in the
    order the documents list the codes."""
    to, country = recipient(request.to)
    sender = shortcode_for(account, request.sender, country)
    if to in {phone_digits(number) for number in account.blocked_numbers}:
        raise ApiError("E114")
    return Addressing(
        to=to,
        sender=sender,
        service_id=service_id_for(account, request.service_id, legacy),
        operator_id=operator_id_for(account, request.operator_id, legacy),
    )


def check_send(
    ctx: Context,
    account: Account,
    request: SendRequest,
    *,
    legacy: bool,
    template: Template | None = None,
    addressing: Addressing | None = None,
) -> Send:
    """Every check of a send; returns the send ready to be recorded (send_id 0 until
    accept_send gives it one)."""
    address = addressing or check_addressing(account, request, legacy=legacy)
    if template is None:
        template = usable_template(ctx, account, request.mms_id)
    fallback = (request.fallback_sms_text or "").strip() or template.fallback_sms_text
    if not fallback and not template.disable_fallback_sms:
        raise ApiError("E622")
    reference = client_reference(request.client_reference)
    send = Send(
        send_id=0,
        account_id=account.account_id,
        mms_id=template.mms_id,
        to=address.to,
        sender=address.sender,
        requested_from=(request.sender or "").strip(),
        service_id=address.service_id,
        operator_id=address.operator_id,
        fallback_sms_text=fallback,
        custom_subject=request.custom_subject,
        custom_texts=custom_texts(
            request.custom_texts, len(template.slides), account.limits.max_text_chars
        ),
        data=request.data,
        ddm=ddm_for(request),
        client_reference=reference,  # its own only, never the template's (docs/postbacks.md)
    )
    check_sizes(template, send, account.limits.max_text_chars)  # merge tags and sizes
    return send


def accept_send(ctx: Context, send: Send, *, waiting: bool = False) -> Send:
    """Give the send its id, record it, and queue it (unless it waits for an encoding):
    the send and its "queue send" outbox item in one transaction, so the answer's
    tracking-id names a stored send on its way to the queue.

    The template is not checked again in that write (a ConditionCheck costs a write of
    the whole template item): one deleted since this function's copy was read (under
    0.5 s ago) finds the send accepted, and delivery ends it with E101, never sent."""
    send.send_id = send.send_id or ctx.send_ids.next_id()
    send.status = SendStatus.WAITING if waiting else SendStatus.QUEUED
    try:
        ctx.sends.create(send, queue=not waiting)
    except OptedOutError:  # checked in the send's own transaction (docs/inbound.md#opt-out)
        raise ApiError("E114") from None
    return send


def check_carrier() -> None:
    """E619 at once when no MMSC is configured: queueing would only end in failure later."""
    if not get_settings().carrier_provisioned:
        raise ApiError("E619")


def send_saved(ctx: Context, account: Account, request: SendRequest, *, legacy: bool) -> Send:
    check_carrier()
    addressing = check_addressing(account, request, legacy=legacy)  # the codes' order
    template = usable_template(ctx, account, request.mms_id)
    send = check_send(
        ctx, account, request, legacy=legacy, template=template, addressing=addressing
    )
    return accept_send(ctx, send)


def send_new(
    ctx: Context, account: Account, save: SaveRequest, request: SendRequest, *, legacy: bool
) -> Send:
    """sendMMS: save a template for this one send, then send it (after its encoding)."""
    # Refuse before anything is fetched or stored.
    check_carrier()
    addressing = check_addressing(account, request, legacy=legacy)
    if OptOutStore().opted_out(account.account_id, addressing.to):
        raise ApiError("E114")  # sendMMS may read: its send is checked again when written
    if not (request.fallback_sms_text or "").strip() and (
        (save.disable_fallback_sms or "").strip().lower() != "yes"
    ):
        raise ApiError("E622")
    send_id = ctx.send_ids.next_id()
    template = save_mms(ctx, account, save, single_send_id=send_id)
    try:
        send = check_send(
            ctx, account, request, legacy=legacy, template=template, addressing=addressing
        )
    except ApiError:
        delete_mms(ctx, account, template.mms_id)  # nothing half-made stays behind
        raise
    send.send_id = send_id
    waiting = template.status is TemplateStatus.ENCODING
    try:
        accept_send(ctx, send, waiting=waiting)
    except ApiError:  # E114: the number opted out while the template was saved
        delete_mms(ctx, account, template.mms_id)
        raise
    if waiting:
        # The encoding may have ended before the send was recorded: release it now then.
        current = ctx.templates.get(template.mms_id)
        if current is not None:
            release_waiting_send(ctx, current)
    return send
