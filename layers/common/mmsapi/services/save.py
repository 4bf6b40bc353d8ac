"""saveMMS: validate, fetch every file, adapt images, store, announce.

Nothing half-written survives a failure: files already uploaded for a template
that could not be saved are deleted before the error is answered.

saveMMS answers synchronously, inside API Gateway's 30 s: all of its work runs
within the request's Budget. Fetches end at the earlier of the budget and
settings.fetch_total_timeout; image adaptation and uploads stop when the budget is
spent. Then what was stored is removed and the slide at work gets its E35x
("Could not copy ... file in slide X"), answered in XML before the gateway gives up.

Memory is bounded too: audio, video and objects larger than
settings.stream_over_bytes are streamed to S3 part by part while they download
(a multipart upload), never held whole. Images (decoded to be fitted, and capped at
25 MiB by default) and text are held in memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from mmsapi.budget import Budget
from mmsapi.errors import ApiError
from mmsapi.media.fetch import FetchedMedia, Spill, fetch_media, sniff_matches
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
from mmsapi.services.announce import ready_postback
from mmsapi.services.context import Context
from mmsapi.settings import get_settings
from mmsapi.store.media import template_prefix
from mmsapi.text import merge_tags

if TYPE_CHECKING:
    from mmsapi.media.images import AdaptedImage

# Kinds held whole in memory whatever their size: images are decoded to be fitted,
# text is read as a string. Every other kind streams to S3 when it is large.
IN_MEMORY_KINDS: Final = frozenset({MediaKind.IMAGE, MediaKind.TEXT})

_T = TypeVar("_T")


@dataclass
class _Item:
    slide: int
    ref: MediaRef
    fetched: FetchedMedia | None = None

    @property
    def base(self) -> str:
        return f"slide-{self.slide}/{self.ref.kind.value}"


def _out_of_time(item: _Item) -> ApiError:
    code = KIND_FACTS[item.ref.kind].not_copied
    return ApiError(code, x=item.slide, detail="the request ran out of time")


class _AbandonedError(Exception):
    """A streamed upload finishing after its save was given up: it is aborted."""


class _Writer:
    """Uploads a template's files and remembers them so a failure can undo them.

    Fetch threads stream large files through it while the request thread stores the
    others, and a fetch may still be running when the request gives up: keys are
    recorded under a lock, and an upload completing after undo() is aborted instead.
    The template's id (its prefix) is taken when the first file is stored.
    """

    def __init__(self, ctx: Context, account_id: str) -> None:
        self.ctx = ctx
        self.account_id = account_id
        self.keys: list[str] = []
        self.bytes = 0
        self._mms_id: int | None = None
        self._undone = False
        self._lock = threading.Lock()

    @property
    def mms_id(self) -> int:
        with self._lock:
            if self._mms_id is None:
                self._mms_id = self.ctx.ids.next_id()
            return self._mms_id

    def _key(self, name: str) -> str:
        return template_prefix(self.account_id, self.mms_id) + name

    def put(self, name: str, data: bytes, content_type: str) -> str:
        """Upload one file. It runs on a worker that may outlive the request (a slow
        S3): a put ending after undo() removes its own file."""
        key = self._key(name)
        if self._undone:
            raise _AbandonedError(key)
        self.ctx.media.put(key, data, content_type)
        with self._lock:  # undo() cannot run between the check and the record
            if not self._undone:
                self.keys.append(key)
                self.bytes += len(data)
                return key
        self._remove([key])
        raise _AbandonedError(key)

    def stream(self, name: str, parts: Iterator[bytes], content_type: str) -> str:
        key = self._key(name)

        def complete(finish: Callable[[], None]) -> None:
            with self._lock:  # undo() cannot run between the check and the record
                if self._undone:
                    raise _AbandonedError(key)
                finish()
                self.keys.append(key)

        size = self.ctx.media.put_parts(key, self._live(parts), content_type, complete=complete)
        with self._lock:
            self.bytes += size
        return key

    def _live(self, parts: Iterator[bytes]) -> Iterator[bytes]:
        for part in parts:
            if self._undone:
                raise _AbandonedError("the save was given up")
            yield part
            del part

    def spill(self, item: _Item) -> Spill:
        def store(content_type: str, parts: Iterator[bytes]) -> str:
            extension = STORED_EXTENSION.get(content_type, "bin")
            return self.stream(f"{item.base}/original.{extension}", parts, content_type)

        return store

    def undo(self) -> None:
        """Remove what was stored; uploads still running remove their own files."""
        with self._lock:
            self._undone = True
            keys = list(self.keys)
        if not keys:
            return
        # Bounded: a slow S3 must not hold the answer past the request's safety margin.
        wait = max(0.5, get_settings().request_safety_margin - 1.0)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="undo")
        try:
            pool.submit(self._remove, keys).result(timeout=wait)
        except FutureTimeout:
            logger.warning("still removing the files of a failed save", extra={"keys": keys})
        finally:
            pool.shutdown(wait=False)

    def _remove(self, keys: list[str]) -> None:
        try:
            self.ctx.media.delete_keys(keys)
        except Exception:  # the original error matters more; log and keep it
            logger.exception("could not remove files of a failed save", extra={"keys": keys})


def _fetch_all(items: list[_Item], account: Account, writer: _Writer, budget: Budget) -> None:
    """Fetch concurrently; report the first failure in slide order (deterministic)."""
    if not items:
        return
    limits = account.limits
    settings = get_settings()
    # One deadline for every fetch: saveMMS answers synchronously.
    deadline = budget.until(settings.fetch_total_timeout)
    workers = max(1, min(len(items), settings.fetch_concurrency))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch")
    try:
        futures = [
            pool.submit(
                fetch_media,
                i.ref.url,
                i.ref.kind,
                i.slide,
                limits.cap(i.ref.kind),
                settings,  # the worker threads do not see a scoped settings context
                deadline=deadline,
                spill=None if i.ref.kind in IN_MEMORY_KINDS else writer.spill(i),
            )
            for i in items
        ]
        for item, future in zip(items, futures, strict=True):
            try:
                item.fetched = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                # The same answer as any failed fetch: a slow server is not told apart.
                code = KIND_FACTS[item.ref.kind].not_copied
                raise ApiError(code, x=item.slide) from None
    finally:
        # Fetches still running end by their own deadline (their streamed uploads are
        # aborted by the writer once it is undone); nobody waits for them.
        pool.shutdown(wait=False, cancel_futures=True)


def _check_content(item: _Item, max_text: int) -> None:
    """Octet-stream content must really be what its extension says (docs/media.md#types)."""
    fetched = item.fetched
    assert fetched is not None
    if item.ref.kind in OBJECT_KINDS and not sniff_matches(fetched.head, fetched.content_type):
        raise ApiError("E229", detail=f"slide {item.slide}: not a {item.ref.kind.value} file")
    if item.ref.kind is MediaKind.TEXT:
        assert fetched.data is not None  # text is never streamed
        try:
            text = fetched.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError("E229", detail=f"slide {item.slide}: text is not UTF-8") from None
        if len(text) > max_text:
            raise ApiError("E334", x=item.slide)


def _in_time(item: _Item, budget: Budget, work: Callable[[], _T]) -> _T:
    """The work's result, or the slide's E35x when the budget runs out first. The work
    cannot be interrupted: it goes on unseen (an image fitting is dropped; an upload
    removes its own file, see _Writer.put)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="save")
    try:
        return pool.submit(work).result(timeout=budget.remaining())
    except FutureTimeout:
        raise _out_of_time(item) from None
    finally:
        pool.shutdown(wait=False)


def _fit(item: _Item, data: bytes, account: Account) -> Callable[[], AdaptedImage]:
    def fit() -> AdaptedImage:
        from mmsapi.media.images import CorruptImage, adapt_image  # Pillow: images only

        try:
            return adapt_image(
                data,
                budget_bytes=account.limits.image_budget_bytes,
                max_dimension=account.limits.image_max_dimension,
            )
        except CorruptImage as exc:
            raise ApiError("E341", x=item.slide, detail=str(exc)) from None

    return fit


def _store(item: _Item, writer: _Writer, account: Account, budget: Budget) -> StoredMedia:
    fetched = item.fetched
    assert fetched is not None
    kind = item.ref.kind
    if budget.expired:
        raise _out_of_time(item)
    if fetched.key is not None:  # streamed to S3 while it was fetched
        original_key = fetched.key
    else:
        assert fetched.data is not None
        extension = STORED_EXTENSION.get(fetched.content_type, "bin")
        name, data = f"{item.base}/original.{extension}", fetched.data
        original_key = _in_time(item, budget, lambda: writer.put(name, data, fetched.content_type))
    stored = StoredMedia(
        kind=kind,
        source_url=fetched.url,
        content_type=fetched.content_type,
        original_key=original_key,
        original_bytes=fetched.size,
    )
    if kind is MediaKind.IMAGE:
        assert fetched.data is not None  # images are never streamed
        adapted = _in_time(item, budget, _fit(item, fetched.data, account))
        rendition = f"{item.base}/adapted.{STORED_EXTENSION.get(adapted.content_type, 'bin')}"
        stored.rendition_key = _in_time(
            item, budget, lambda: writer.put(rendition, adapted.data, adapted.content_type)
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
        if item.ref.kind is MediaKind.TEXT and item.fetched and item.fetched.data is not None:
            return item.fetched.data.decode("utf-8")
    return None


def save_mms(
    ctx: Context,
    account: Account,
    request: SaveRequest,
    *,
    single_send_id: int | None = None,
    budget: Budget | None = None,
) -> Template:
    """Save a template; `budget` bounds the work (default: the request's, Budget.current())."""
    budget = budget or Budget.current()
    valid: ValidSave = validate_save(request, account.limits)
    items = [_Item(s.number, ref) for s in valid.slides for ref in s.media]
    writer = _Writer(ctx, account.account_id)
    try:
        _fetch_all(items, account, writer, budget)
        for item in items:
            _check_content(item, account.limits.max_text_chars)
    except BaseException:
        writer.undo()  # large files streamed while they were fetched
        raise

    try:
        slides: list[TemplateSlide] = []
        for spec in valid.slides:
            own = [i for i in items if i.slide == spec.number]
            slides.append(
                TemplateSlide(
                    text=_slide_text(spec.text, own),
                    duration=spec.duration,
                    media=[
                        _store(i, writer, account, budget)
                        for i in own
                        if i.ref.kind is not MediaKind.TEXT
                    ],
                )
            )
        timed = any(m.kind in TIMED_KINDS for s in slides for m in s.media)
        template = Template(
            mms_id=writer.mms_id,
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
        # N003 with the template itself; a sendMMS template is not announced: its send is.
        ready = template.status is TemplateStatus.READY and single_send_id is None
        ctx.templates.create(template, postback=ready_postback(template) if ready else None)
    except BaseException:
        writer.undo()
        raise
    if template.status is TemplateStatus.READY:
        return template
    from mmsapi.services.encode import start_encoding  # audio and video only

    try:
        start_encoding(ctx, template, account)
    except BaseException:
        # A template nobody will ever encode would stay locked forever: take it back.
        ctx.templates.delete(template.mms_id)
        writer.undo()
        raise
    return template
