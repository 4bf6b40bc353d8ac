"""The API front door: one XML request in, one XML answer out, never an exception.

Each action's modules are imported on its first request, not when the function starts:
a cold start that answers a saveMMS never loads the send path (phonenumbers) or the
listing, and a text-only one never loads image adaptation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from mmsapi.budget import Budget, within
from mmsapi.errors import ApiError
from mmsapi.models import ALL_ACTIONS, Account, Dialect, Send
from mmsapi.observability import count, logger, message_context, tag
from mmsapi.services.auth import authenticate
from mmsapi.services.context import Context
from mmsapi.services.idempotency import run_once
from mmsapi.services.limits import check_limits
from mmsapi.settings import get_settings
from mmsapi.tracking import parse_tracking_id, tracking_id
from mmsapi.xml import render
from mmsapi.xml.parse import Document, extract_document, parse_document, sniff_dialect
from mmsapi.xml.render import Field

DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

Action = Callable[[Context, Account, Document], list[Field]]


# Each action below imports its service on its first request (see the module's note).


def _save(ctx: Context, account: Account, doc: Document) -> list[Field]:
    from mmsapi.services.save import save_mms
    from mmsapi.xml.requests import read_save

    template = save_mms(ctx, account, read_save(doc.root))
    return [("mms-id", str(template.mms_id))]


def _delete(ctx: Context, account: Account, doc: Document) -> list[Field]:
    from mmsapi.services.manage import delete_mms, parse_mms_id

    mms_id = parse_mms_id(doc.root.value("mms-id"))
    delete_mms(ctx, account, mms_id)
    return [("mms-id", str(mms_id))]


def _list(ctx: Context, account: Account, doc: Document) -> list[Field]:
    from mmsapi.services.manage import list_templates

    root = doc.root
    page = list_templates(
        ctx,
        account,
        root.value("start-date"),
        root.value("page-number"),
        root.value("items-per-page"),
    )
    fields: list[Field] = [
        ("start-date", page.start_date.strftime(DATE_FORMAT) if page.start_date else ""),
        ("page-number", str(page.page_number)),
        ("items-per-page", str(page.items_per_page)),
        ("total-results", str(page.total)),
    ]
    for t in page.templates:
        fields.append(
            (
                "mms-template",
                [
                    ("mms-id", str(t.mms_id)),
                    ("mms-name", t.name),
                    ("mms-subject", t.subject),
                    ("date-created", t.created_at.strftime(DATE_FORMAT)),
                    ("total-slides", str(t.total_slides)),
                    ("mms-size", str(t.size_bytes)),
                ],
            )
        )
    return fields


# The success answer of each send action, in the documents' order (docs/answers.md).
SEND_ANSWERS: Final = {
    "sendSavedMMS": ("mms-id", "tracking-id", "to", "from", "status-details"),
    "sendMMS": ("to", "mms-id", "tracking-id", "status-details"),
}


def _send_fields(send: Send, action: str) -> list[Field]:
    from mmsapi.services.send import STATUS_DETAILS

    values = {
        "mms-id": str(send.mms_id),
        "tracking-id": tracking_id(send.send_id),
        "to": send.to,
        "from": send.sender,
        "status-details": STATUS_DETAILS,
    }
    return [(name, values[name]) for name in SEND_ANSWERS[action]]


def _send_saved(ctx: Context, account: Account, doc: Document) -> list[Field]:
    from mmsapi.services.send import send_saved
    from mmsapi.xml.requests import read_send

    legacy = doc.dialect is Dialect.LEGACY
    send = send_saved(ctx, account, read_send(doc.root, doc.dialect), legacy=legacy)
    return _send_fields(send, "sendSavedMMS")


def _send_new(ctx: Context, account: Account, doc: Document) -> list[Field]:
    from mmsapi.services.send import send_new
    from mmsapi.xml.requests import read_save, read_send

    legacy = doc.dialect is Dialect.LEGACY
    request = read_send(doc.root, doc.dialect)
    send = send_new(ctx, account, read_save(doc.root), request, legacy=legacy)
    return _send_fields(send, "sendMMS")


ACTIONS: Final[dict[str, Action]] = {
    "saveMMS": _save,
    "sendSavedMMS": _send_saved,
    "sendMMS": _send_new,
    "deleteMMSID": _delete,
    "getMMSTemplates": _list,
}
# Failures of these actions carry the `to` of the request (docs/answers.md#failure).
SEND_ACTIONS: Final = frozenset({"sendSavedMMS", "sendMMS"})
# Action names are matched without regard to case, as legacy clients vary.
_BY_LOWER: Final = {name.lower(): name for name in ALL_ACTIONS}


def handle(
    ctx: Context,
    body: bytes,
    query: dict[str, str],
    source_ip: str,
    budget: Budget | None = None,
) -> bytes:
    """Answer one request. Every outcome is an XML answer (docs/actions.md#the-request).

    `budget` is the time the work may take (the Lambda handler derives it from its
    context); without one, Budget.default(). saveMMS and sendMMS stop within it.
    """
    # Every line of this request carries its ids, and none of the next request's.
    with within(budget or Budget.default()), message_context():
        return _answer(ctx, body, query, source_ip)


def _tag_answer(fields: list[Field]) -> None:
    """The ids an answer gives (mms-id; a send's tracking-id) on the lines after it."""
    given = {name: value for name, value in fields if isinstance(value, str)}
    tracking = given.get("tracking-id", "")
    tag(
        mms_id=given.get("mms-id"),
        tracking_id=tracking,
        send_id=parse_tracking_id(tracking) if tracking else None,
    )


def _answer(ctx: Context, body: bytes, query: dict[str, str], source_ip: str) -> bytes:
    dialect = Dialect.CURRENT
    to: str | None = None
    action = ""
    try:
        if len(body) > get_settings().max_request_bytes:
            dialect = sniff_dialect(body)  # a legacy client's refusal is in its dialect too
            raise ApiError("E100", detail="request body is too large")
        document = extract_document(body, query)
        dialect = sniff_dialect(document)
        doc = parse_document(document)
        dialect = doc.dialect
        if not doc.action:
            raise ApiError("E100", detail="action is required")
        action = _BY_LOWER.get(doc.action.lower(), "")
        tag(action=action, client_reference=doc.root.value("client-reference"))
        if action in SEND_ACTIONS:
            to = doc.root.value("to") or ""
        account = authenticate(ctx.accounts, doc.root.value("api-key"), source_ip, action)
        tag(account=account.account_id)
        run = ACTIONS.get(action)
        if run is None:
            raise ApiError("E107")

        # Limits count every authenticated request before its action does any work, but
        # not a repeat of an earlier request (run_once answers it without calling work; a
        # refusal deletes the idempotency claim, so a retry is checked again).
        def work() -> list[Field]:
            check_limits(account, action)
            return run(ctx, account, doc)

        fields = run_once(account, action, doc, work)
        _tag_answer(fields)
        logger.info("answered")
        count("Succeeded", action=action)
        return render.response(fields, dialect)
    except ApiError as error:
        logger.info("refused", extra={"code": error.code, "info": error.info})
        count("Refused", action=action, code=error.code)
        return render.failure(error, dialect, to)
    except Exception:
        logger.exception("internal error")
        count("InternalErrors", action=action)
        return render.failure(ApiError("E503"), dialect, to)
