"""The stores a warm Lambda keeps between invocations, created on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from mmsapi.store.accounts import AccountStore
from mmsapi.store.events import EventPublisher
from mmsapi.store.ids import IdAllocator
from mmsapi.store.media import MediaStore
from mmsapi.store.templates import TemplateStore
from mmsapi.store.workflows import EncodeWorkflow


@dataclass
class Context:
    accounts: AccountStore = field(default_factory=AccountStore)
    templates: TemplateStore = field(default_factory=TemplateStore)
    media: MediaStore = field(default_factory=MediaStore)
    ids: IdAllocator = field(default_factory=IdAllocator)
    events: EventPublisher = field(default_factory=EventPublisher)
    workflow: EncodeWorkflow = field(default_factory=EncodeWorkflow)


@cache
def context() -> Context:
    return Context()


def reset() -> None:
    """Forget the stores (tests that start a fresh emulated AWS call this)."""
    context.cache_clear()
