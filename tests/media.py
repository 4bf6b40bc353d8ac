"""Test media made by the tests themselves: small, deterministic, never downloaded."""

from __future__ import annotations

import io
import math
import random
import struct
import wave

from PIL import Image, ImageDraw


def photo_jpeg(width: int = 640, height: int = 480, seed: int = 7, quality: int = 92) -> bytes:
    """A photo-like JPEG: gradients plus seeded noise."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(0, height, 4):
        shade = int(255 * y / height)
        draw.rectangle((0, y, width, y + 3), fill=(shade, 128, 255 - shade))
    for _ in range(width * height // 40):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.point((x, y), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def flat_png(width: int = 320, height: int = 200) -> bytes:
    image = Image.new("RGB", (width, height), (240, 240, 240))
    ImageDraw.Draw(image).rectangle((20, 20, width - 20, 60), fill=(30, 90, 200))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def animated_gif(frames: int = 6, size: int = 64) -> bytes:
    images = []
    for i in range(frames):
        frame = Image.new("P", (size, size), 0)
        ImageDraw.Draw(frame).ellipse((i * 4, i * 4, i * 4 + 20, i * 4 + 20), fill=i + 1)
        images.append(frame)
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def tone_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        samples = (
            int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate))
        )
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return out.getvalue()


VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane Doe\r\nTEL:+14045550100\r\nEND:VCARD\r\n"
