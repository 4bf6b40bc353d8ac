"""Hostile images made by the tests themselves: small files that are costly to decode.

Shared by tests/unit/test_image_bombs.py and benchmarks/hostile_inputs.py. Every
generator is deterministic and takes well under a second.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image

_SOS = b"\xff\xda"
_EOI = b"\xff\xd9"


def _segments(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each marker segment of a JPEG, a scan's entropy data included."""
    found, pos = [], 2
    while pos < len(data):
        marker = data[pos + 1]
        if marker == 0xD9:
            found.append((pos, pos + 2))
            return found
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # entropy-coded data runs to the next real marker
            while not (data[end] == 0xFF and data[end + 1] not in (0, *range(0xD0, 0xD8))):
                end += 1
        found.append((pos, end))
        pos = end
    return found


def scan_bomb_jpeg(scans: int = 5000, side: int = 2048) -> bytes:
    """A progressive grey JPEG of `side`² pixels whose last AC scan is repeated `scans`
    times. Each repeat is a few bytes (one EOB run over a flat picture), yet libjpeg
    walks every block of the picture once per scan: decoding cost grows with the count.
    """
    out = io.BytesIO()
    Image.new("L", (side, side), 128).save(out, "JPEG", progressive=True, quality=90)
    data = out.getvalue()
    segments = _segments(data)
    scan_starts = [s for s in segments if data[s[0] + 1] == 0xDA]
    start, end = scan_starts[-1]
    last_scan = data[start:end]
    body_end = segments[-1][0]  # EOI
    return data[:body_end] + last_scan * scans + _EOI


def frame_bomb_gif(frames: int = 2000, side: int = 1000, noise_pixels: int = 0) -> bytes:
    """An animation of `frames` frames of `side`² pixels: LZW packs each flat frame in a
    few kB, but decoding them all means frames × side² pixels. Two frames are encoded
    by Pillow, then repeated by hand (encoding thousands would itself take seconds)."""
    rng = random.Random(8)
    images = [Image.new("P", (side, side), i) for i in range(2)]
    for image in images:
        image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
        # A band of noise that LZW cannot pack: the file outgrows any image budget,
        # so it must be decoded and fitted rather than served as it is.
        band = min(side, noise_pixels // side)
        image.paste(
            Image.frombytes(
                "P", (side, band), bytes(rng.getrandbits(1) for _ in range(side * band))
            )
        )
    out = io.BytesIO()
    # Alternating frames, so that no encoder or decoder can merge identical neighbours.
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=20, loop=0)
    data = out.getvalue()
    blocks = _gif_blocks(data)
    first_frame = next(
        i for i, (start, _) in enumerate(blocks) if data[start : start + 2] == b"\x21\xf9"
    )
    head = data[: blocks[first_frame][0]]
    pair = data[blocks[first_frame][0] : blocks[-1][0]]  # both frames, up to the trailer
    return head + pair * (frames // 2) + b"\x3b"


def _gif_blocks(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each block after the header and global colour table."""
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    found = []
    while data[pos] != 0x3B:
        start = pos
        if data[pos] == 0x2C:  # image descriptor, local colour table, LZW code size
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
        else:  # extension: introducer, label
            pos += 2
        while data[pos]:  # sub-blocks
            pos += data[pos] + 1
        pos += 1
        found.append((start, pos))
    found.append((pos, pos + 1))
    return found


def huge_png(width: int = 10_000, height: int = 6_000) -> bytes:
    """A flat RGBA PNG of width × height pixels (60 MP by default): deflate packs it
    to ~250 KB, but decoding it takes 4 bytes a pixel."""
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (200, 100, 50, 128)).save(out, "PNG", compress_level=9)
    return out.getvalue()


def claimed_size_png(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims width × height: nothing but a header to decode."""
    out = io.BytesIO()
    Image.new("L", (1, 1), 0).save(out, "PNG")
    data = bytearray(out.getvalue())
    ihdr = 8 + 8  # signature, then IHDR's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))  # type and body of IHDR
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


__all__ = ["claimed_size_png", "frame_bomb_gif", "huge_png", "scan_bomb_jpeg"]
