"""deleteMMSID and getMMSTemplates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mmsapi.errors import ApiError
from mmsapi.models import Account, TemplateStatus, TemplateSummary
from mmsapi.numbers import ascii_digits, ascii_int
from mmsapi.services.context import Context
from mmsapi.store.media import template_prefix

MAX_ITEMS_PER_PAGE = 1000
DEFAULT_ITEMS_PER_PAGE = 100
MAX_ID = 2**63 - 1  # ids are positive 64-bit integers
MAX_EPOCH_SECONDS = 253402300799  # 9999-12-31T23:59:59Z, datetime's last second
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def parse_mms_id(raw: str | None) -> int:
    """The mms-id of a request: missing → E620, not a positive 64-bit integer → E241."""
    if raw is None or raw == "":
        raise ApiError("E620")
    mms_id = ascii_int(raw, 1, MAX_ID)
    if mms_id is None:
        raise ApiError("E241")
    return mms_id


def delete_mms(ctx: Context, account: Account, mms_id: int) -> None:
    """Hide the template, delete every stored file, then the template itself.

    If deleting files fails the template stays hidden (status deleting) and a
    repeated deleteMMSID finishes the job, so no reader sees a half-deleted MMS.
    """
    template = ctx.templates.get(mms_id)
    if template is None or template.account_id != account.account_id:
        raise ApiError("E241")
    if template.status is not TemplateStatus.DELETING and not ctx.templates.mark_deleting(
        mms_id, account.account_id
    ):
        raise ApiError("E241")
    ctx.media.delete_prefix(template_prefix(account.account_id, mms_id))
    ctx.templates.delete(mms_id)


def parse_positive(raw: str | None, default: int, code: str, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    value = ascii_int(raw, 1, maximum)
    if value is None:
        raise ApiError(code)
    return value


def parse_start_date(raw: str | None) -> datetime | None:
    """A UTC timestamp: epoch seconds, ISO 8601, or 'YYYY-MM-DD[ HH:MM:SS]'. Else E214."""
    if raw is None or raw == "":
        return None
    if not raw.isascii():
        # strptime's %Y and fromisoformat would read other scripts' digits.
        raise ApiError("E214")
    if ascii_digits(raw):
        seconds = ascii_int(raw, 0, MAX_EPOCH_SECONDS)
        if seconds is None:
            raise ApiError("E214")
        return datetime.fromtimestamp(seconds, UTC)
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("E214") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class TemplatePage:
    start_date: datetime | None
    page_number: int
    items_per_page: int
    total: int
    templates: list[TemplateSummary]


def list_templates(
    ctx: Context,
    account: Account,
    start_date: str | None,
    page_number: str | None,
    items_per_page: str | None,
) -> TemplatePage:
    page = parse_positive(page_number, 1, "E212", 2**31)
    per_page = parse_positive(items_per_page, DEFAULT_ITEMS_PER_PAGE, "E213", MAX_ITEMS_PER_PAGE)
    since = parse_start_date(start_date)
    total, rows = ctx.templates.page(account.account_id, since, page, per_page)
    return TemplatePage(since, page, per_page, total, rows)
