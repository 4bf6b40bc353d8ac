"""Build the message for one recipient and handset (docs/handset-adaptation.md).

Per slide the form the handset plays is chosen (video MP4 or 3GP, audio MP3 or
AMR, in the profile's order of preference), images are fitted to its screen,
and objects go as binary parts or as links by its OS. The whole message must
fit the handset's limit on the air (every part costs size × 1.37 + 814).
Delivery beats quality, so the message is reduced step by step, never by
dropping content, the cheapest loss first:

1. images share what the other parts leave, down to IMAGE_FLOOR_BYTES each;
2. videos take their smaller rendition (3GP), then audio its smaller one (AMR);
3. videos are re-encoded into what is left (seconds of ffmpeg: after the cheap steps),
   from the smallest stored rendition still larger than that (never the original, up
   to 200 MiB of 4K), streamed to a file, and stopped in time for the send to finish
   within its invocation (`reencode_within`): past that, the next steps go on;
4. objects go as links instead of binary parts, largest first;
5. images go down to IMAGE_MIN_BYTES.

If even that does not fit, DoesNotFit: the caller sends the fallback SMS with a link.

The binary parts depend only on (template, profile), not on the recipient, so
they are cached per (mms_id, profile_id), in S3 and in memory (rendition_cache.py);
texts and links are added on every call. A cache hit encodes nothing.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from mmsapi.budget import Budget
from mmsapi.carrier.message import HandsetProfile, MessagePart, OutgoingMessage, SlidePlan
from mmsapi.carrier.profiles import BINARY_OBJECTS
from mmsapi.media.types import OBJECT_KINDS, STORED_EXTENSION, TIMED_KINDS, MediaKind
from mmsapi.models import StoredMedia, Template
from mmsapi.observability import logger
from mmsapi.services.rendition_cache import (
    Adapted,
    AdaptedPart,
    LruRenditionCache,
    RenditionCache,
    S3RenditionCache,
)
from mmsapi.settings import get_settings

__all__ = [
    "Adapted",
    "AdaptedPart",
    "DoesNotFit",
    "LruRenditionCache",
    "RenditionCache",
    "S3RenditionCache",
    "adapt_message",
    "reencode_within",
]

AIR_FACTOR: Final = 1.37  # base64 on the air...
PART_OVERHEAD: Final = 814  # ...plus each part's headers (docs/handset-adaptation.md)
IMAGE_FLOOR_BYTES: Final = 8 * 1024  # below this, other media lose quality first
IMAGE_MIN_BYTES: Final = 3 * 1024  # the last resort: a thumbnail still shows the picture
# Air bytes that images leave free, so recipients whose texts are a little longer than
# the first recipient's still fit the cached parts.
TEXT_RESERVE: Final = 2 * 1024
MIN_REENCODE_BYTES: Final = 8 * 1024  # no video is worth sending below this
TEXT_TYPE: Final = "text/plain; charset=utf-8"
# After re-encoding, the send still submits to the MMSC (up to settings.mm7_timeout) or
# sends its fallback SMS, and writes its outcome: this much more is kept for that.
SEND_RESERVE_SECONDS: Final = 10.0
MIN_REENCODE_SECONDS: Final = 5.0  # with less time left, no re-encode is started

LinkFor = Callable[[StoredMedia], str]
Loader = Callable[[str], bytes]
Downloader = Callable[[str, Path], None]  # S3 key -> a local file, streamed

# The time re-encoding may take in this invocation; unset (tests, tools): ENCODE_SECONDS.
_reencode_budget: ContextVar[Budget | None] = ContextVar("mmsapi_reencode", default=None)


@contextmanager
def reencode_within(remaining_ms: int) -> Iterator[Budget]:
    """Re-encoding inside this block stops early enough for the send to finish within
    its invocation: `remaining_ms` is the Lambda context's get_remaining_time_in_millis()."""
    reserve_ms = int((get_settings().mm7_timeout + SEND_RESERVE_SECONDS) * 1000)
    budget = Budget.from_remaining_ms(remaining_ms - reserve_ms)
    token = _reencode_budget.set(budget)
    try:
        yield budget
    finally:
        _reencode_budget.reset(token)


class DoesNotFit(Exception):  # noqa: N818 - a verdict, not a fault
    """Not even the most reduced form of the template fits the handset."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class AdaptStats:
    """What this process spent on adapting (read by benchmarks and tests)."""

    adaptations: int = 0  # templates adapted for a profile: cache misses
    image_encodes: int = 0  # adapt_image calls
    reencodes: int = 0  # ffmpeg runs at send time


STATS: Final = AdaptStats()


def adapt_message(
    template: Template,
    profile: HandsetProfile,
    *,
    load: Loader,
    subject: str,
    slide_texts: list[str | None],
    link_for: LinkFor,
    cache: RenditionCache | None = None,
    download: Downloader | None = None,
) -> OutgoingMessage:
    """The message for one recipient: `slide_texts[i]` is slide i's text, already merged
    (missing entries: no text). Raises DoesNotFit when no form fits the handset.

    `download` streams a stored file to disk for re-encoding (without it, `load` reads
    it whole: stored renditions are small, at most Limits' video budget ceiling)."""
    texts = [slide_texts[i] if i < len(slide_texts) else None for i in range(len(template.slides))]
    links = _Links(link_for)
    adapted = cache.get(template, profile.profile_id) if cache is not None else None
    if adapted is None:
        adapted, cut_short = _adapted(template, profile, _Memo(load, download), texts, links)
        # A result that ran out of time is this invocation's, not the template's.
        if cache is not None and not cut_short:
            cache.put(template, profile.profile_id, adapted)
    elif not adapted.does_not_fit:
        message = _compose(template, subject, adapted.parts, texts, links)
        if message.air_bytes() <= profile.max_message_bytes:
            return message
        # This recipient's texts outgrew the reserve: adapt for them alone, uncached.
        adapted, _ = _adapted(template, profile, _Memo(load, download), texts, links)
    if adapted.does_not_fit:
        raise DoesNotFit(adapted.does_not_fit)
    message = _compose(template, subject, adapted.parts, texts, links)
    if message.air_bytes() > profile.max_message_bytes:  # fitted by construction
        raise DoesNotFit(f"{message.air_bytes()} bytes on the air, over the handset's limit")
    return message


def _adapted(
    template: Template,
    profile: HandsetProfile,
    load: _Memo,
    texts: list[str | None],
    links: _Links,
) -> tuple[Adapted, bool]:
    """The adapted parts, and whether a re-encode was cut short by the time left."""
    STATS.adaptations += 1
    plan: _Plan | None = None
    try:
        plan = _Plan.start(template, profile, texts, links, load)
        fitted = plan.fit()
        steps = (
            plan.smaller_video,
            plan.smaller_audio,
            plan.reencode_video,
            plan.link_largest_object,
            plan.tiny_images,
        )
        for step in steps:  # in the order of the module's docstring
            while fitted is None and step():
                fitted = plan.fit()
        if fitted is None:
            raise DoesNotFit(
                f"{plan.least_air()} bytes on the air at the least, over the handset's limit "
                f"of {profile.max_message_bytes}"
            )
    except DoesNotFit as exc:
        return Adapted(does_not_fit=exc.reason), plan is not None and plan.cut_short
    return Adapted(parts=fitted), plan.cut_short


# ---- the message ------------------------------------------------------------------


def _air(size: int) -> int:
    return int(size * AIR_FACTOR) + PART_OVERHEAD


def _raw(air: int) -> int:
    """The largest size whose air cost is at most `air`."""
    return max(0, int((air - PART_OVERHEAD) / AIR_FACTOR))


def _content_id(slide: int, kind: MediaKind, content_type: str) -> str:
    mime = content_type.split(";", 1)[0]
    return f"s{slide}-{kind.value}.{STORED_EXTENSION.get(mime, 'bin')}"


def _part(slide: int, kind: MediaKind, content_type: str, data: bytes) -> AdaptedPart:
    cid = _content_id(slide, kind, content_type)
    return AdaptedPart(
        slide=slide,
        kind=kind,
        part=MessagePart(content_id=cid, content_type=content_type, filename=cid, data=data),
    )


def _slide_text(text: str | None, links: list[str]) -> str:
    return "\n".join(t for t in (text, *links) if t)


class _Links:
    """link_for, asked once per object (it may create a hosted page)."""

    def __init__(self, link_for: LinkFor) -> None:
        self._link_for = link_for
        self._known: dict[tuple[int, MediaKind], str] = {}

    def __call__(self, slide: int, media: StoredMedia) -> str:
        key = (slide, media.kind)
        if key not in self._known:
            self._known[key] = self._link_for(media)
        return self._known[key]


def _first_of_each_kind(media: list[StoredMedia]) -> list[StoredMedia]:
    seen: dict[MediaKind, StoredMedia] = {}
    for item in media:
        seen.setdefault(item.kind, item)
    return list(seen.values())


def _objects(template: Template) -> list[tuple[int, StoredMedia]]:
    return [
        (n, m)
        for n, slide in enumerate(template.slides, start=1)
        for m in _first_of_each_kind(slide.media)
        if m.kind in OBJECT_KINDS
    ]


def _compose(
    template: Template,
    subject: str,
    binary: list[AdaptedPart],
    texts: list[str | None],
    links: _Links,
) -> OutgoingMessage:
    """The message from the binary parts; every object without one goes as a link."""
    by_key = {(p.slide, p.kind): p.part for p in binary}
    objects = _objects(template)
    slides: list[SlidePlan] = []
    parts: list[MessagePart] = []
    for n, slide in enumerate(template.slides, start=1):
        image, video, audio = (
            by_key.get((n, k)) for k in (MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.AUDIO)
        )
        mine = [m for s, m in objects if s == n]
        sent = [by_key[(n, m.kind)] for m in mine if (n, m.kind) in by_key]
        text = _slide_text(texts[n - 1], [links(n, m) for m in mine if (n, m.kind) not in by_key])
        text_part = _part(n, MediaKind.TEXT, TEXT_TYPE, text.encode()).part if text else None
        parts.extend(p for p in (image, video, audio, text_part, *sent) if p is not None)
        slides.append(
            SlidePlan(
                duration=slide.duration,
                image=image.content_id if image else None,
                video=video.content_id if video else None,
                audio=audio.content_id if audio else None,
                text=text_part.content_id if text_part else None,
                objects=[p.content_id for p in sent],
            )
        )
    return OutgoingMessage(subject=subject, slides=slides, parts=parts)


# ---- fitting ----------------------------------------------------------------------


class _Memo:
    """The loader, each key read once per adaptation; and the downloader, if any."""

    def __init__(self, load: Loader, download: Downloader | None = None) -> None:
        self._load = load
        self._download = download
        self._read: dict[str, bytes] = {}

    def __call__(self, key: str) -> bytes:
        if key not in self._read:
            self._read[key] = self._load(key)
        return self._read[key]

    def to_file(self, key: str, path: Path) -> None:
        """The stored file at `path`: streamed when it can be, else through memory."""
        if key in self._read or self._download is None:
            path.write_bytes(self(key))
        else:
            self._download(key, path)


@dataclass(frozen=True)
class _Form:
    key: str  # "" for a form made at send time
    content_type: str
    bytes: int


@dataclass
class _Slot:
    """One audio, video or binary object of a slide and the form it goes in."""

    slide: int
    media: StoredMedia
    forms: list[_Form]  # what the handset takes, preferred first
    current: _Form
    made: bytes | None = None  # re-encoded at send time

    @property
    def air(self) -> int:
        return _air(self.current.bytes)

    def smaller(self) -> bool:
        """One step down: the largest form smaller than the current one."""
        if self.made is not None:
            return False
        smaller = [f for f in self.forms if f.bytes < self.current.bytes]
        if not smaller:
            return False
        self.current = max(smaller, key=lambda f: f.bytes)
        return True


def _stored_form(media: StoredMedia) -> _Form:
    return _Form(
        media.rendition_key or media.original_key,
        media.rendition_type or media.content_type,
        media.rendition_bytes or media.original_bytes,
    )


def _timed_slot(slide: int, media: StoredMedia, profile: HandsetProfile) -> _Slot:
    accepted = profile.video_types if media.kind is MediaKind.VIDEO else profile.audio_types
    stored = [_Form(r.key, r.content_type, r.bytes) for r in media.renditions]
    if not stored and media.rendition_key:
        stored = [_stored_form(media)]
    forms = sorted(
        (f for f in stored if f.content_type in accepted),
        key=lambda f: accepted.index(f.content_type),
    )
    if not forms:
        raise DoesNotFit(
            f"slide {slide}: the handset plays no {media.kind.value} form this template has"
        )
    return _Slot(slide, media, forms, forms[0])


@dataclass
class _Plan:
    template: Template
    profile: HandsetProfile
    texts: list[str | None]
    links: _Links
    load: _Memo
    images: list[tuple[int, StoredMedia]] = field(default_factory=list)
    timed: list[_Slot] = field(default_factory=list)
    objects: list[_Slot] = field(default_factory=list)  # sent as binary parts
    linked: set[tuple[int, MediaKind]] = field(default_factory=set)  # sent as links
    image_floor: int = IMAGE_FLOOR_BYTES
    cut_short: bool = False  # a re-encode was not tried, or stopped, for lack of time

    @classmethod
    def start(
        cls,
        template: Template,
        profile: HandsetProfile,
        texts: list[str | None],
        links: _Links,
        load: _Memo,
    ) -> _Plan:
        plan = cls(template, profile, texts, links, load)
        binary = BINARY_OBJECTS[profile.os]
        for n, slide in enumerate(template.slides, start=1):
            for media in _first_of_each_kind(slide.media):
                if media.kind is MediaKind.IMAGE:
                    plan.images.append((n, media))
                elif media.kind in TIMED_KINDS:
                    plan.timed.append(_timed_slot(n, media, profile))
                elif media.kind in binary:
                    form = _stored_form(media)
                    plan.objects.append(_Slot(n, media, [form], form))
                elif media.kind in OBJECT_KINDS:
                    plan.linked.add((n, media.kind))
        # An object bigger than the whole message can only ever go as a link.
        for slot in list(plan.objects):
            if slot.air > profile.max_message_bytes - plan.text_air():
                plan.objects.remove(slot)
                plan.linked.add((slot.slide, slot.media.kind))
        return plan

    def text_air(self) -> int:
        """The text parts, links included: the same texts _compose makes."""
        linked = [(s, m) for s, m in _objects(self.template) if (s, m.kind) in self.linked]
        total = 0
        for n, text in enumerate(self.texts, start=1):
            full = _slide_text(text, [self.links(s, m) for s, m in linked if s == n])
            total += _air(len(full.encode())) if full else 0
        return total

    def fixed_air(self) -> int:
        """Everything but the images."""
        return self.text_air() + sum(s.air for s in (*self.timed, *self.objects))

    def least_air(self) -> int:
        return self.fixed_air() + len(self.images) * _air(IMAGE_MIN_BYTES)

    def fit(self) -> list[AdaptedPart] | None:
        """Every binary part, the images sharing what is left; None when that is too little."""
        left = self.profile.max_message_bytes - self.fixed_air()
        floor = len(self.images) * _air(self.image_floor)
        if left < floor:
            return None
        aim = left - min(TEXT_RESERVE, left - floor)
        parts: list[AdaptedPart] = []
        # Smallest first: what a small image leaves unused goes to the bigger ones.
        ordered = sorted(self.images, key=lambda i: i[1].rendition_bytes or i[1].original_bytes)
        for index, (slide, media) in enumerate(ordered):
            share = aim // (len(ordered) - index)
            part = self._image(slide, media, _raw(share))
            if part is None:
                return None
            aim -= _air(len(part.part.data))
            parts.append(part)
        for slot in (*self.timed, *self.objects):
            data = slot.made if slot.made is not None else self.load(slot.current.key)
            parts.append(_part(slot.slide, slot.media.kind, slot.current.content_type, data))
        return sorted(parts, key=lambda p: p.slide)

    def _image(self, slide: int, media: StoredMedia, budget: int) -> AdaptedPart | None:
        # Pillow loads with the first image to fit: text-only sends and reports never do.
        from mmsapi.media.images import CorruptImage, adapt_image

        source = self.load(media.rendition_key or media.original_key)
        STATS.image_encodes += 1
        try:
            image = adapt_image(
                source, budget_bytes=budget, max_dimension=self.profile.max_image_dimension
            )
        except ValueError:
            return None  # not even a thumbnail fits
        except CorruptImage as exc:
            raise DoesNotFit(f"slide {slide}: the stored image does not decode: {exc}") from exc
        return _part(slide, MediaKind.IMAGE, image.content_type, image.data)

    # ---- the reduction steps: each returns whether it changed anything ----

    def _smaller(self, kind: MediaKind) -> bool:
        changed = [slot.smaller() for slot in self.timed if slot.media.kind is kind]
        return any(changed)

    def smaller_video(self) -> bool:
        return self._smaller(MediaKind.VIDEO)

    def smaller_audio(self) -> bool:
        return self._smaller(MediaKind.AUDIO)

    def reencode_video(self) -> bool:
        videos = [s for s in self.timed if s.media.kind is MediaKind.VIDEO and s.made is None]
        if not videos:
            return False
        others = self.fixed_air() - sum(s.air for s in videos)
        floor = len(self.images) * _air(self.image_floor)
        budget = _raw((self.profile.max_message_bytes - others - floor) // len(videos))
        if budget < MIN_REENCODE_BYTES:
            return False
        changed = False
        for slot in videos:
            if slot.current.bytes <= budget:
                continue
            data = self._reencode(slot.media, slot.current.content_type, budget)
            if data is not None:
                slot.made = data
                slot.current = _Form("", slot.current.content_type, len(data))
                changed = True
        return changed

    def _reencode(self, media: StoredMedia, content_type: str, budget: int) -> bytes | None:
        seconds = _reencode_seconds()
        if seconds < MIN_REENCODE_SECONDS:
            logger.info("no time left to re-encode", extra={"seconds": round(seconds, 1)})
            self.cut_short = True
            return None
        started = time.monotonic()
        data = _reencode(media, content_type, budget, self.load, seconds)
        if data is None and time.monotonic() - started >= seconds:
            self.cut_short = True  # stopped by the deadline, not by the video
        return data

    def link_largest_object(self) -> bool:
        if not self.objects:
            return False
        largest = max(self.objects, key=lambda s: s.current.bytes)
        self.objects.remove(largest)
        self.linked.add((largest.slide, largest.media.kind))
        return True

    def tiny_images(self) -> bool:
        if not self.images or self.image_floor <= IMAGE_MIN_BYTES:
            return False
        self.image_floor = IMAGE_MIN_BYTES
        return True


def _reencode_source(media: StoredMedia, budget: int) -> _Form:
    """The smallest stored video rendition still larger than `budget`: it holds more than
    the result can keep, and costs the least to read and decode. Never the original (up
    to 200 MiB of 4K): re-encoding happens only when a stored form is too big, so one
    larger than the budget exists."""
    forms = [
        _Form(r.key, r.content_type, r.bytes)
        for r in media.renditions
        if r.content_type.startswith("video/")
    ] or [_stored_form(media)]
    larger = [f for f in forms if f.bytes > budget]
    return min(larger, key=lambda f: f.bytes) if larger else max(forms, key=lambda f: f.bytes)


def _reencode_seconds() -> float:
    # ffmpeg's modules load only for a re-encode: most sends never make one.
    from mmsapi.media.transcode import ENCODE_SECONDS

    budget = _reencode_budget.get()
    return ENCODE_SECONDS if budget is None else min(ENCODE_SECONDS, budget.remaining())


def _reencode(
    media: StoredMedia, content_type: str, budget: int, load: _Memo, seconds: float
) -> bytes | None:
    """The video re-encoded into `budget` bytes of `content_type`, within `seconds`."""
    from mmsapi.media.ffmpeg import FfmpegNotFoundError, TranscodeError
    from mmsapi.media.transcode import MAX_SECONDS, VIDEO_3GP_BUDGET_BYTES, transcode_video

    STATS.reencodes += 1
    small = content_type == "video/3gpp"
    source_form = _reencode_source(media, budget)
    with tempfile.TemporaryDirectory(prefix="adapt-") as tmp:
        workdir = Path(tmp)
        source = workdir / f"source.{STORED_EXTENSION.get(source_form.content_type, 'bin')}"
        load.to_file(source_form.key, source)
        try:
            # transcode_video makes both forms; the unwanted one gets an easy budget.
            _, made = transcode_video(
                source,
                workdir,
                budget_bytes=VIDEO_3GP_BUDGET_BYTES if small else budget,
                budget_3gp_bytes=budget,
                max_seconds=media.duration_seconds or MAX_SECONDS,
                seconds=seconds,
            )
        except TranscodeError as exc:
            logger.info("video does not re-encode smaller", extra={"reason": exc.reason})
            return None
        except FfmpegNotFoundError:
            # A deployment fault: log it loudly, but let the send fall back.
            logger.exception("no ffmpeg for re-encoding at send time")
            return None
        wanted = next((r for r in made if r.content_type == content_type), None)
        return wanted.path.read_bytes() if wanted is not None else None
