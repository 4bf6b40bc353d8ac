"""The stores a warm Lambda keeps between invocations, each created on first use.

A store's module is imported when the store is first used, not when the function
starts: a saveMMS never loads the MMSC client, the SMS gateway or the handset cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from mmsapi.carrier.sms import SmsGateway
    from mmsapi.services.rendition_cache import RenditionCache
    from mmsapi.store.accounts import AccountStore
    from mmsapi.store.events import EventPublisher
    from mmsapi.store.handsets import HandsetCache
    from mmsapi.store.ids import IdAllocator
    from mmsapi.store.media import MediaStore
    from mmsapi.store.outbox import OutboxStore
    from mmsapi.store.sends import SendQueue, SendStore
    from mmsapi.store.templates import TemplateStore
    from mmsapi.store.workflows import EncodeWorkflow

T = TypeVar("T")

# One store per Context even when two threads (a save's fetch workers) ask at once;
# reentrant: a store may be made from another (renditions from media).
_making = threading.RLock()


class Store(Generic[T]):
    """A Context attribute made by `make(context)` on first read, then kept on the
    instance (a plain attribute from then on: tests may replace it)."""

    def __init__(self, make: Callable[[Context], T]) -> None:
        self.make = make
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, ctx: None, owner: type[Any]) -> Store[T]: ...
    @overload
    def __get__(self, ctx: Context, owner: type[Any]) -> T: ...
    def __get__(self, ctx: Context | None, owner: type[Any]) -> Store[T] | T:
        if ctx is None:
            return self
        with _making:
            if self.name not in ctx.__dict__:
                ctx.__dict__[self.name] = self.make(ctx)
        made: T = ctx.__dict__[self.name]
        return made


def _accounts(_: Context) -> AccountStore:
    from mmsapi.store.accounts import AccountStore

    return AccountStore()


def _templates(_: Context) -> TemplateStore:
    from mmsapi.store.templates import TemplateStore

    return TemplateStore()


def _media(_: Context) -> MediaStore:
    from mmsapi.store.media import MediaStore

    return MediaStore()


def _template_ids(_: Context) -> IdAllocator:
    from mmsapi.store.ids import IdAllocator

    return IdAllocator()


def _send_ids(_: Context) -> IdAllocator:
    from mmsapi.store.ids import SEND_IDS, IdAllocator

    return IdAllocator(SEND_IDS)


def _events(_: Context) -> EventPublisher:
    from mmsapi.store.events import EventPublisher

    return EventPublisher()


def _outbox(_: Context) -> OutboxStore:
    from mmsapi.store.outbox import OutboxStore

    return OutboxStore()


def _workflow(_: Context) -> EncodeWorkflow:
    from mmsapi.store.workflows import EncodeWorkflow

    return EncodeWorkflow()


def _sends(_: Context) -> SendStore:
    from mmsapi.store.sends import SendStore

    return SendStore()


def _send_queue(_: Context) -> SendQueue:
    from mmsapi.store.sends import SendQueue

    return SendQueue()


def _handsets(_: Context) -> HandsetCache:
    from mmsapi.store.handsets import HandsetCache

    return HandsetCache()


def _sms(_: Context) -> SmsGateway:
    from mmsapi.carrier.sms import sms_gateway

    return sms_gateway()


def _renditions(ctx: Context) -> RenditionCache:
    """Adapted parts per (template, handset profile): memory first, then S3."""
    from mmsapi.services.rendition_cache import LruRenditionCache, S3RenditionCache

    return LruRenditionCache(S3RenditionCache(ctx.media))


class Context:
    """The stores of one function's process (one per function in the local runtime)."""

    accounts = Store(_accounts)
    templates = Store(_templates)
    media = Store(_media)
    ids = Store(_template_ids)
    events = Store(_events)
    outbox = Store(_outbox)
    workflow = Store(_workflow)
    sends = Store(_sends)
    send_ids = Store(_send_ids)
    send_queue = Store(_send_queue)
    handsets = Store(_handsets)
    sms = Store(_sms)
    renditions = Store(_renditions)


@cache
def context() -> Context:
    return Context()


def reset() -> None:
    """Forget the stores (tests that start a fresh emulated AWS call this)."""
    context.cache_clear()
