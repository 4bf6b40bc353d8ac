"""The adapted binary parts of a template per handset profile, kept for the next send.

They depend only on (template, profile), never on the recipient. S3 keeps them
beside the template (templates/<account>/<mms_id>/adapted/<profile_id>/: the
parts, then manifest.json, so a manifest means a complete set; deleting the
template deletes them). A small LRU per Lambda instance sits in front, so most
sends of a campaign read nothing at all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import field
from typing import Final, Protocol

from mmsapi import records
from mmsapi.carrier.message import MessagePart
from mmsapi.errors import DomainError
from mmsapi.media.types import MediaKind
from mmsapi.models import Template
from mmsapi.observability import logger
from mmsapi.records import RecordError, record
from mmsapi.store.media import MediaStore, template_prefix

# Bumped when adaptation changes, so parts made the old way are made again.
CACHE_VERSION: Final = 1
MEMORY_BYTES: Final = 64 * 1024 * 1024  # of a Lambda's memory, for the LRU
MANIFEST: Final = "manifest.json"


@record
class AdaptedPart:
    slide: int  # 1-based
    kind: MediaKind
    part: MessagePart


@record
class Adapted:
    """The binary parts of one template for one profile, or why it cannot fit."""

    parts: list[AdaptedPart] = field(default_factory=list)
    does_not_fit: str = ""

    @property
    def size(self) -> int:
        return sum(len(p.part.data) for p in self.parts)


class RenditionCache(Protocol):
    def get(self, template: Template, profile_id: str) -> Adapted | None: ...

    def put(self, template: Template, profile_id: str, adapted: Adapted) -> None: ...


@record
class _Entry:
    slide: int
    kind: MediaKind
    content_id: str
    content_type: str
    filename: str
    bytes: int


@record
class _Manifest:
    version: int
    does_not_fit: str = ""
    parts: list[_Entry] = field(default_factory=list)


def adapted_prefix(template: Template, profile_id: str) -> str:
    return f"{template_prefix(template.account_id, template.mms_id)}adapted/{profile_id}/"


class S3RenditionCache:
    def __init__(self, media: MediaStore) -> None:
        self.media = media

    def get(self, template: Template, profile_id: str) -> Adapted | None:
        prefix = adapted_prefix(template, profile_id)
        try:
            manifest = records.from_json(_Manifest, self.media.get(prefix + MANIFEST))
            if manifest.version != CACHE_VERSION:
                return None
            parts = [_read_part(self.media, prefix, entry) for entry in manifest.parts]
        except (DomainError, RecordError, _DamagedPartError):
            return None  # absent, old or damaged: adapting again repairs it
        return Adapted(parts=parts, does_not_fit=manifest.does_not_fit)

    def put(self, template: Template, profile_id: str, adapted: Adapted) -> None:
        prefix = adapted_prefix(template, profile_id)
        manifest = _Manifest(version=CACHE_VERSION, does_not_fit=adapted.does_not_fit)
        try:
            for p in adapted.parts:
                self.media.put(prefix + p.part.content_id, p.part.data, p.part.content_type)
                manifest.parts.append(
                    _Entry(
                        slide=p.slide,
                        kind=p.kind,
                        content_id=p.part.content_id,
                        content_type=p.part.content_type,
                        filename=p.part.filename,
                        bytes=len(p.part.data),
                    )
                )
            body = records.to_json(manifest).encode()
            self.media.put(prefix + MANIFEST, body, "application/json")
        except DomainError:
            # Only an optimisation failed: this send goes on, the next adapts again.
            logger.warning("could not cache adapted parts", extra={"prefix": prefix})


class _DamagedPartError(Exception):
    """A part whose size is not the manifest's: cut short or overwritten."""


def _read_part(media: MediaStore, prefix: str, entry: _Entry) -> AdaptedPart:
    data = media.get(prefix + entry.content_id)
    if len(data) != entry.bytes:
        raise _DamagedPartError(entry.content_id)
    part = MessagePart(
        content_id=entry.content_id,
        content_type=entry.content_type,
        filename=entry.filename,
        data=data,
    )
    return AdaptedPart(slide=entry.slide, kind=entry.kind, part=part)


class LruRenditionCache:
    """In memory, least recently used out first, in front of an optional slower cache."""

    def __init__(self, backing: RenditionCache | None = None, *, max_bytes: int = MEMORY_BYTES):
        self.backing = backing
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, int, str], Adapted] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, template: Template, profile_id: str) -> Adapted | None:
        key = (template.account_id, template.mms_id, profile_id)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        if self.backing is None:
            return None
        found = self.backing.get(template, profile_id)
        if found is not None:
            self._remember(key, found)
        return found

    def put(self, template: Template, profile_id: str, adapted: Adapted) -> None:
        self._remember((template.account_id, template.mms_id, profile_id), adapted)
        if self.backing is not None:
            self.backing.put(template, profile_id, adapted)

    def _remember(self, key: tuple[str, int, str], adapted: Adapted) -> None:
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous.size
            self._entries[key] = adapted
            self._bytes += adapted.size
            # The newest entry stays even when alone it is over the limit.
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size
