"""The stores a warm Lambda keeps between invocations, created on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from mmsapi.carrier.sms import SmsGateway, sms_gateway
from mmsapi.services.rendition_cache import LruRenditionCache, RenditionCache, S3RenditionCache
from mmsapi.store.accounts import AccountStore
from mmsapi.store.events import EventPublisher
from mmsapi.store.handsets import HandsetCache
from mmsapi.store.ids import SEND_IDS, IdAllocator
from mmsapi.store.media import MediaStore
from mmsapi.store.outbox import OutboxStore
from mmsapi.store.sends import SendQueue, SendStore
from mmsapi.store.templates import TemplateStore
from mmsapi.store.workflows import DiscoveryWorkflow, EncodeWorkflow


@dataclass
class Context:
    accounts: AccountStore = field(default_factory=AccountStore)
    templates: TemplateStore = field(default_factory=TemplateStore)
    media: MediaStore = field(default_factory=MediaStore)
    ids: IdAllocator = field(default_factory=IdAllocator)
    events: EventPublisher = field(default_factory=EventPublisher)
    outbox: OutboxStore = field(default_factory=OutboxStore)
    workflow: EncodeWorkflow = field(default_factory=EncodeWorkflow)
    discovery: DiscoveryWorkflow = field(default_factory=DiscoveryWorkflow)
    sends: SendStore = field(default_factory=SendStore)
    send_ids: IdAllocator = field(default_factory=lambda: IdAllocator(SEND_IDS))
    send_queue: SendQueue = field(default_factory=SendQueue)
    handsets: HandsetCache = field(default_factory=HandsetCache)
    sms: SmsGateway = field(default_factory=sms_gateway)
    # Adapted parts per (template, handset profile): memory first, then S3.
    renditions: RenditionCache = field(init=False)

    def __post_init__(self) -> None:
        self.renditions = LruRenditionCache(S3RenditionCache(self.media))


@cache
def context() -> Context:
    return Context()


def reset() -> None:
    """Forget the stores (tests that start a fresh emulated AWS call this)."""
    context.cache_clear()
