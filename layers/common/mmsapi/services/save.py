"""saveMMS: validate, fetch every file, adapt images, store, announce.

Nothing half-written survives a failure: files already uploaded for a template
that could not be saved are deleted before the error is answered.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from mmsapi.errors import ApiError
from mmsapi.media.fetch import FetchedMedia, fetch_media, sniff_matches
from mmsapi.media.images import CorruptImage, adapt_image
from mmsapi.media.types import KIND_FACTS, OBJECT_KINDS, STORED_EXTENSION, TIMED_KINDS, MediaKind
from mmsapi.models import (
    Account,
    MediaRef,
    SaveRequest,
    StoredMedia,
    Template,
    TemplateSlide,
    TemplateStatus,
)
from mmsapi.observability import logger
from mmsapi.rules import ValidSave, validate_save
from mmsapi.services.announce import announce_ready
from mmsapi.services.context import Context
from mmsapi.services.encode import start_encoding
from mmsapi.settings import get_settings
from mmsapi.store.media import template_prefix
from mmsapi.text import merge_tags


@dataclass
class _Item:
    slide: int
    ref: MediaRef
    fetched: FetchedMedia | None = None


def _fetch_all(items: list[_Item], account: Account) -> None:
    """Fetch concurrently; report the first failure in slide order (deterministic)."""
    if not items:
        return
    limits = account.limits
    settings = get_settings()
    # One deadline for the whole request: saveMMS answers synchronously.
    deadline = time.monotonic() + settings.fetch_total_timeout
    workers = max(1, min(len(items), settings.fetch_concurrency))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch")
    try:
        futures = [
            pool.submit(fetch_media, i.ref.url, i.ref.kind, i.slide, limits.cap(i.ref.kind))
            for i in items
        ]
        for item, future in zip(items, futures, strict=True):
            try:
                item.fetched = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                code = KIND_FACTS[item.ref.kind].not_copied
                raise ApiError(code, x=item.slide, detail="the media server was too slow") from None
    finally:
        # Fetches still running end by their own deadline; nobody waits for them.
        pool.shutdown(wait=False, cancel_futures=True)


def _check_content(item: _Item, max_text: int) -> None:
    """Octet-stream content must really be what its extension says (API-NOTES §4)."""
    fetched = item.fetched
    assert fetched is not None
    if item.ref.kind in OBJECT_KINDS and not sniff_matches(fetched.data, fetched.content_type):
        raise ApiError("E229", detail=f"slide {item.slide}: not a {item.ref.kind.value} file")
    if item.ref.kind is MediaKind.TEXT:
        try:
            text = fetched.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError("E229", detail=f"slide {item.slide}: text is not UTF-8") from None
        if len(text) > max_text:
            raise ApiError("E334", x=item.slide)


class _Writer:
    """Uploads a template's files and remembers them so a failure can undo them."""

    def __init__(self, ctx: Context, prefix: str) -> None:
        self.ctx = ctx
        self.prefix = prefix
        self.keys: list[str] = []
        self.bytes = 0

    def put(self, name: str, data: bytes, content_type: str) -> str:
        key = self.prefix + name
        self.ctx.media.put(key, data, content_type)
        self.keys.append(key)
        self.bytes += len(data)
        return key

    def undo(self) -> None:
        try:
            self.ctx.media.delete_keys(self.keys)
        except Exception:  # the original error matters more; log and keep it
            logger.exception("could not remove files of a failed save", extra={"keys": self.keys})


def _store(item: _Item, writer: _Writer, account: Account) -> StoredMedia:
    fetched = item.fetched
    assert fetched is not None
    kind = item.ref.kind
    base = f"slide-{item.slide}/{kind.value}"
    extension = STORED_EXTENSION.get(fetched.content_type, "bin")
    stored = StoredMedia(
        kind=kind,
        source_url=fetched.url,
        content_type=fetched.content_type,
        original_key=writer.put(f"{base}/original.{extension}", fetched.data, fetched.content_type),
        original_bytes=len(fetched.data),
    )
    if kind is MediaKind.IMAGE:
        try:
            adapted = adapt_image(
                fetched.data,
                budget_bytes=account.limits.image_budget_bytes,
                max_dimension=account.limits.image_max_dimension,
            )
        except CorruptImage as exc:
            raise ApiError("E341", x=item.slide, detail=str(exc)) from None
        rendition_ext = STORED_EXTENSION.get(adapted.content_type, "bin")
        stored.rendition_key = writer.put(
            f"{base}/adapted.{rendition_ext}", adapted.data, adapted.content_type
        )
        stored.rendition_type = adapted.content_type
        stored.rendition_bytes = len(adapted.data)
        stored.width, stored.height, stored.frames = adapted.width, adapted.height, adapted.frames
    elif kind not in TIMED_KINDS:
        # Objects and text are sent as they are: the original is the rendition.
        stored.rendition_key = stored.original_key
        stored.rendition_type = stored.content_type
        stored.rendition_bytes = stored.original_bytes
    return stored


def _slide_text(valid_text: str | None, items: list[_Item]) -> str | None:
    if valid_text is not None:
        return valid_text
    for item in items:
        if item.ref.kind is MediaKind.TEXT and item.fetched is not None:
            return item.fetched.data.decode("utf-8")
    return None


def save_mms(
    ctx: Context, account: Account, request: SaveRequest, *, single_send_id: int | None = None
) -> Template:
    valid: ValidSave = validate_save(request, account.limits)
    items = [_Item(s.number, ref) for s in valid.slides for ref in s.media]
    _fetch_all(items, account)
    for item in items:
        _check_content(item, account.limits.max_text_chars)

    mms_id = ctx.ids.next_id()
    writer = _Writer(ctx, template_prefix(account.account_id, mms_id))
    try:
        slides: list[TemplateSlide] = []
        for spec in valid.slides:
            own = [i for i in items if i.slide == spec.number]
            slides.append(
                TemplateSlide(
                    text=_slide_text(spec.text, own),
                    duration=spec.duration,
                    media=[
                        _store(i, writer, account) for i in own if i.ref.kind is not MediaKind.TEXT
                    ],
                )
            )
        timed = any(m.kind in TIMED_KINDS for s in slides for m in s.media)
        template = Template(
            mms_id=mms_id,
            account_id=account.account_id,
            name=valid.name,
            subject=valid.subject,
            fallback_sms_text=valid.fallback_sms_text,
            disable_fallback_sms=valid.disable_fallback_sms,
            disable_fallback_sms_link=valid.disable_fallback_sms_link,
            client_reference=valid.client_reference,
            status=TemplateStatus.ENCODING if timed else TemplateStatus.READY,
            slides=slides,
            merge_tags=merge_tags(valid.subject, *(s.text for s in slides)),
            size_bytes=writer.bytes,
            single_send_id=single_send_id,
        )
        ctx.templates.create(template)
    except BaseException:
        writer.undo()
        raise
    if template.status is TemplateStatus.READY:
        if single_send_id is None:  # a sendMMS template is not announced: its send is
            announce_ready(ctx, template)
        return template
    try:
        start_encoding(ctx, template, account)
    except BaseException:
        # A template nobody will ever encode would stay locked forever: take it back.
        ctx.templates.delete(template.mms_id)
        writer.undo()
        raise
    return template
