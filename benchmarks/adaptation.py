"""Send-time adaptation of one saved template to many recipients and handsets.

One template (a 1600x1200 photo adapted at save time, 10 s of audio encoded to
MP3 + AMR by ffmpeg, a text with a merge tag), made here, kept in the emulated
media bucket (moto, in-process). 10,000 recipients spread over the handset
profiles each get their message from adapt_message with the cache a deliver
Lambda instance uses (memory LRU over S3). Every binary part depends only on
(template, profile): the target is one adaptation per profile. A last round
times a new instance (empty memory) reading each profile's parts back from S3.

Run: .venv/bin/python -m benchmarks.adaptation [sends]
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

from moto import mock_aws

from benchmarks.common import percentile, quiet_environment
from benchmarks.goals import Figure, record
from local.stack import provision
from mmsapi.carrier.profiles import PROFILES
from mmsapi.media.images import adapt_image
from mmsapi.media.transcode import AUDIO_BUDGET_BYTES, MAX_SECONDS, transcode_audio
from mmsapi.media.types import MediaKind
from mmsapi.models import Rendition, StoredMedia, Template, TemplateSlide, TemplateStatus
from mmsapi.services import adapt
from mmsapi.services.adapt import LruRenditionCache, S3RenditionCache, adapt_message
from mmsapi.settings import get_settings
from mmsapi.store.media import MediaStore, template_prefix
from mmsapi.text import fill_merge_tags
from tests.media import photo_jpeg, tone_wav

NAMES = ("Bill", "Alexandra", "Jo", "Maria-José", "Wei")


def _saved_template(media: MediaStore) -> Template:
    """What saveMMS and the encoding pipeline leave: originals plus renditions."""
    prefix = template_prefix("bench", 1)
    photo = photo_jpeg(1600, 1200)
    adapted = adapt_image(photo, budget_bytes=600 * 1024, max_dimension=1600)
    media.put(prefix + "slide-1/image/original.jpg", photo, "image/jpeg")
    media.put(prefix + "slide-1/image/adapted.jpg", adapted.data, adapted.content_type)
    image = StoredMedia(
        kind=MediaKind.IMAGE,
        source_url="https://example.com/photo.jpg",
        content_type="image/jpeg",
        original_key=prefix + "slide-1/image/original.jpg",
        original_bytes=len(photo),
        rendition_key=prefix + "slide-1/image/adapted.jpg",
        rendition_type=adapted.content_type,
        rendition_bytes=len(adapted.data),
    )
    audio = StoredMedia(
        kind=MediaKind.AUDIO,
        source_url="https://example.com/jingle.wav",
        content_type="audio/wav",
        original_key=prefix + "slide-1/audio/original.wav",
        original_bytes=0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "jingle.wav"
        source.write_bytes(tone_wav(10.0, rate=22050))
        media.upload(source, audio.original_key, "audio/wav")
        audio.original_bytes = source.stat().st_size
        duration, encoded = transcode_audio(
            source, Path(tmp), budget_bytes=AUDIO_BUDGET_BYTES, max_seconds=MAX_SECONDS
        )
        for r in encoded:
            key = f"{prefix}slide-1/audio/{r.profile}{r.path.suffix}"
            media.upload(r.path, key, r.content_type)
            stored = Rendition(
                key=key,
                content_type=r.content_type,
                profile=r.profile,
                codec=r.codec,
                bytes=r.bytes,
            )
            audio.renditions.append(stored)
    audio.duration_seconds = duration
    text = "Hi {$name|there}! 20% off everything today with code SPRING."
    slide = TemplateSlide(text=text, duration=10, media=[image, audio])
    return Template(
        mms_id=1, account_id="bench", name="b", status=TemplateStatus.READY, slides=[slide]
    )


def run(sends: int) -> None:
    quiet_environment()
    with mock_aws():
        stack = provision("mmsapi-bench")
        os.environ.update(stack.function_environment("ApiFunction"))
        get_settings.cache_clear()
        media = MediaStore()
        template = _saved_template(media)
        cache = LruRenditionCache(S3RenditionCache(media))
        rng = random.Random(7)
        profiles = list(PROFILES.values())
        before = (adapt.STATS.adaptations, adapt.STATS.image_encodes, adapt.STATS.reencodes)
        first: list[float] = []
        again: list[float] = []
        seen: set[str] = set()
        sizes: dict[str, int] = {}
        for n in range(sends):
            profile = rng.choice(profiles)
            data = {"name": NAMES[n % len(NAMES)]}
            texts: list[str | None] = [fill_merge_tags(s.text or "", data) for s in template.slides]
            start = time.perf_counter()
            message = adapt_message(
                template,
                profile,
                load=media.get,
                subject="Spring sale",
                slide_texts=texts,
                link_for=lambda m: "https://m.example.com/v/1",
                cache=cache,
            )
            elapsed = (time.perf_counter() - start) * 1000
            assert message.air_bytes() <= profile.max_message_bytes
            (again if profile.profile_id in seen else first).append(elapsed)
            seen.add(profile.profile_id)
            sizes[profile.profile_id] = message.air_bytes()
        # A new Lambda instance: empty memory, the parts read back from S3.
        cold: list[float] = []
        for profile in profiles:
            start = time.perf_counter()
            adapt_message(
                template,
                profile,
                load=media.get,
                subject="Spring sale",
                slide_texts=[template.slides[0].text],
                link_for=lambda m: "https://m.example.com/v/1",
                cache=LruRenditionCache(S3RenditionCache(media)),
            )
            cold.append((time.perf_counter() - start) * 1000)
        adaptations = adapt.STATS.adaptations - before[0]
        encodes = adapt.STATS.image_encodes - before[1]
        reencodes = adapt.STATS.reencodes - before[2]
    every = first + again
    print("adapt_message, one template (photo + MP3/AMR audio + text), moto in-process")
    print(f"sends                     {sends}")
    print(f"distinct profiles         {len(seen)}")
    print(
        f"adaptations performed     {adaptations}"
        f"  (image encodes {encodes}, re-encodes {reencodes})"
    )
    print(f"{'':26}{'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    rows = (
        ("first send per profile", first),
        ("cached (memory)", again),
        ("all", every),
        ("new instance (S3 read)", cold),
    )
    for label, times in rows:
        print(
            f"{label:26}{len(times):6d} {percentile(times, 0.5):8.2f} "
            f"{percentile(times, 0.99):8.2f} {max(times):8.2f}"
        )
    record(Figure("adaptations per (template, profile)", adaptations / len(seen), 1, "", "exactly"))
    print("message size on the air per profile (limit):")
    for profile_id, size in sorted(sizes.items()):
        limit = PROFILES[profile_id].max_message_bytes
        print(f"  {profile_id:16} {size / 1024:7.1f} KB of {limit / 1024:6.0f} KB")


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
