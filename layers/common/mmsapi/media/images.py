"""Adapt images for MMS: decode completely, keep only pixels, fit a byte budget.

Used at saveMMS time ("images are adapted at once", docs/media.md; an image that
does not decode is E341) and again at send time for each handset's size limit,
so every function here is deterministic and keeps no state between calls.

Outputs are formats that every handset shows: JPEG for photos, PNG for flat
graphics and transparency, GIF for animations. WebP and APNG inputs are
converted. Nothing but pixels survives: EXIF (GPS!), XMP, ICC profiles and
comments are dropped, after the orientation and the colour profile have been
applied to the pixels.

Fitting uses few encoder runs ("passes"): one JPEG at a high quality, then a
quality predicted from that measurement (bytes ≈ scale ** -k, with scale
libjpeg's quantiser scale and k fitted from the measurements), then a short
bracketed search. Only when the lowest quality does not fit are the pixels
reduced: bytes ≈ pixels ** g (g ≈ 0.75, refitted from measurements), so each
side shrinks by (budget / bytes) ** (1 / 2g), with a margin.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from PIL import Image, ImageChops, ImageCms, UnidentifiedImageError

# Pillow has no bound of its own on what a small file may cost to decode, so every
# image is measured from its headers (O(bytes), no pixel decoded) and refused with
# E341 when decoding it could cost more than these (benchmarks/hostile_inputs.py):
# A small file can claim a huge canvas (decompression bomb). 60 MP is above any phone
# camera; a JPEG that large is decoded at 1/2..1/8 scale (libjpeg's draft mode).
MAX_PIXELS: Final = 60_000_000
# What is decoded at full size (PNG, GIF, WebP, JPEG after draft scaling): ~13 bytes
# a pixel at the peak for RGBA, so 40 MP peaks near 550 MB.
MAX_DECODED_PIXELS: Final = 40_000_000
# libjpeg walks every block of the picture once per progressive scan, and an empty
# scan is a few bytes: the cost is scans × pixels, whatever the file size.
MAX_JPEG_SCANS: Final = 100
MAX_SCAN_PIXELS: Final = 1_500_000_000  # 25 scans of 60 MP; photos have ≤ 12 scans
# Animations, over all frames: each frame is composited onto the whole canvas and
# every decoded frame is kept in memory while the animation is fitted.
MAX_ANIMATION_PIXELS: Final = 40_000_000
MAX_FRAMES: Final = 500

MAX_QUALITY: Final = 90  # above this JPEG grows fast for no visible gain
MIN_QUALITY: Final = 35  # below this, fewer pixels look better than more blocking
SCALED_QUALITY: Final = 70  # the quality aimed at once pixels must be dropped
MIN_SIDE: Final = 16  # the smallest thumbnail tried before a budget is called absurd
MIN_ANIMATION_SIDE: Final = 120  # below this an animation drops frames instead
PALETTE_COLORS: Final = 256
FIT_PASSES: Final = 6  # once something fits, refining stops after this many passes

_AIM: Final = 0.97  # predictions aim just under the budget...
_CLOSE_ENOUGH: Final = 0.94  # ...and a fit this close to it ends the search
_REFINE_BELOW: Final = 0.75  # an animation this far under the budget gets one more try
_REFINE_AIM: Final = 0.9  # that try lands between two measurements: aim lower
_MIN_SHRINK: Final = 0.9  # every shrink takes at least 10 % off each side
_TYPICAL_EXPONENT: Final = 0.65  # k of bytes ≈ scale ** -k, measured on photos
# g of bytes ≈ pixels ** g: a smaller picture packs more detail into each pixel.
_PIXEL_EXPONENT: Final = 0.75
_FLAT_SHARE: Final = 0.5  # share of pixels equal to their left neighbour in flat art
_GIF_COLOURS: Final = 255  # one palette slot stays free for transparency
_GIF_FEWER_COLOURS: Final = 63
_GIF_TRANSPARENT: Final = 255
_GIF_MAX_DURATION: Final = 655_350  # ms: GIF stores a frame's delay in 16 bits of 1/100 s
_IJG_LUMA_SUM: Final = 3688  # sum of the IJG standard luminance table (quality 50)

_INPUT_FORMATS: Final = ("JPEG", "PNG", "GIF", "WEBP")
_SERVED_FORMATS: Final = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}
# What Pillow raises on malformed input, depending on the plugin and the damage.
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ArithmeticError,
    struct.error,
    Image.DecompressionBombError,
)
# What survives when metadata is cut from a source that is served as it is.
_KEPT_JPEG_APPS: Final = {0xE0: b"JFIF\0", 0xEE: b"Adobe"}  # APPn marker -> body start
_KEPT_PNG_CHUNKS: Final = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD"}
)
_KEPT_GIF_APPS: Final = (b"NETSCAPE2.0", b"ANIMEXTS1.0")  # the loop count
# EXIF orientation -> the transpose that shows the picture upright.
_ORIENTATION_FIX: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION: Final = 0x0112
# Maps alpha < 128 to 255: the pixels a GIF shows as transparent.
_CLEAR_MASK: Final = [255] * 128 + [0] * 128
# A colour change this small (per channel, of 255) is GIF quantisation noise, not motion.
_STEADY_TOLERANCE: Final = 24
_STEADY_MASK: Final = [255] * (_STEADY_TOLERANCE + 1) + [0] * (255 - _STEADY_TOLERANCE)


class CorruptImage(Exception):  # noqa: N818 - the name callers already use
    """The bytes are not a complete, decodable image of an accepted size (E341)."""


@dataclass(frozen=True)
class AdaptedImage:
    data: bytes
    content_type: str
    width: int
    height: int
    frames: int
    passes: int  # encoder runs spent; 0 when the source's own bytes are served


@dataclass(frozen=True)
class _Source:
    format: str
    frames: tuple[Image.Image, ...]  # upright, sRGB, L/RGB/RGBA, within max_dimension
    durations: tuple[int, ...]
    loop: int | None
    resized: bool
    servable: bool  # nothing to fix but metadata: the bytes may be served, stripped
    exact_png: bool  # a still PNG whose pixels survived decoding unchanged
    jpeg_quality: int | None


@dataclass(frozen=True)
class _Encoded:
    data: bytes
    width: int
    height: int
    quality: int = 0

    @property
    def size(self) -> int:
        return len(self.data)


def adapt_image(data: bytes, *, budget_bytes: int, max_dimension: int = 1600) -> AdaptedImage:
    """Decode `data` completely and return a handset-ready image of at most `budget_bytes`.

    A JPEG, PNG or GIF source that already fits (and needs no turning or colour
    conversion) comes back as its own bytes minus metadata; a re-encoded still
    that fits is never bigger than its source unless that would cost pixels.

    Raises CorruptImage when the image does not decode completely or is too big
    to decode safely, and ValueError when the budget is absurd: not even a
    16-pixel thumbnail fits (budgets of a few hundred bytes).
    """
    if budget_bytes <= 0 or max_dimension < MIN_SIDE:
        raise ValueError(f"absurd limits: {budget_bytes} bytes, {max_dimension} px")
    source = _decode(data, max_dimension)
    fits = not source.resized and source.format in _SERVED_FORMATS and len(data) <= budget_bytes
    if fits and source.servable:
        served = _served_as_is(data, source)
        if served is not None:
            return served
    if len(source.frames) > 1:
        return _adapt_animation(source, budget_bytes)
    frame, quality = source.frames[0], _quality_cap(source)
    spent = 0
    if fits:
        # Turning or colour-converting a still that fits must not make it bigger,
        # unless that would take pixels away: then the real budget applies.
        undercut = _within_budget(frame, len(data), quality)
        if undercut is not None and (undercut.width, undercut.height) == frame.size:
            return undercut
        spent = undercut.passes if undercut is not None else 0
    adapted = _adapt_still(frame, budget_bytes, quality)
    return replace(adapted, passes=adapted.passes + spent)


def _served_as_is(data: bytes, source: _Source) -> AdaptedImage | None:
    stripped = _without_metadata(data, source.format)
    if stripped is None:
        return None
    if not source.exact_png:
        return _as_is(stripped, source, passes=0)
    # The same pixels may pack smaller (palette, better deflate): one pass to see.
    repacked = _lossless_png(source.frames[0])
    if repacked.size < len(stripped):
        return _still(repacked, "image/png", 1)
    return _as_is(stripped, source, passes=1)


def _within_budget(frame: Image.Image, budget: int, quality: int) -> AdaptedImage | None:
    try:
        return _adapt_still(frame, budget, quality)
    except ValueError:
        return None  # a tiny source that cannot be undercut


# --- decoding -------------------------------------------------------------------------


def _decode(data: bytes, max_dimension: int) -> _Source:
    if not data:
        raise CorruptImage("the file is empty")
    try:
        with Image.open(io.BytesIO(data), formats=_INPUT_FORMATS) as img:
            original = img.size
            _refuse_bombs(img, data)
            if img.format == "JPEG":
                _draft(img, max_dimension)
            _refuse_full_decode(img)
            if img.format == "PNG":
                _verify_png(data)
            return _read(img, original, max_dimension)
    except UnidentifiedImageError as exc:
        raise CorruptImage("not a JPEG, PNG, GIF or WebP image") from exc
    except _DECODE_ERRORS as exc:
        raise CorruptImage(f"the image does not decode: {exc}") from exc


def _refuse_bombs(img: Image.Image, data: bytes) -> None:
    """What the headers say decoding would cost; nothing is decoded here."""
    width, height = img.size
    if width <= 0 or height <= 0:
        raise CorruptImage(f"the image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise CorruptImage(f"{width}x{height} is over the {MAX_PIXELS} pixel limit")
    if img.format == "JPEG":
        scans = jpeg_scans(data)
        if scans > MAX_JPEG_SCANS or scans * width * height > MAX_SCAN_PIXELS:
            raise CorruptImage(f"{scans} scans of {width}x{height} are over the JPEG scan limit")
    frames = _frame_count(img)  # GIF: walks the blocks, decodes none; APNG, WebP: headers
    if frames > 1 and (frames > MAX_FRAMES or frames * width * height > MAX_ANIMATION_PIXELS):
        raise CorruptImage(f"{frames} frames of {width}x{height} are over the animation limit")


def _refuse_full_decode(img: Image.Image) -> None:
    width, height = img.size  # after draft scaling
    if width * height > MAX_DECODED_PIXELS:
        raise CorruptImage(
            f"{width}x{height} is over the {MAX_DECODED_PIXELS} pixel decoding limit"
        )


def jpeg_scans(data: bytes) -> int:
    """The scans (SOS markers) of a JPEG's first picture, counted without decoding.

    Header segments are skipped by their lengths up to the first SOS; from there,
    entropy-coded data never holds 0xFF followed by anything but 0x00 or a restart
    marker, so every FF DA up to the EOI is a scan (counted in C: O(bytes)).
    """
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:
            end = data.find(b"\xff\xd9", pos)
            return data.count(b"\xff\xda", pos, end if end >= 0 else len(data))
        if marker == 0xFF:  # fill byte
            pos += 1
        elif 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return 0  # no scan at all: Pillow will say it does not decode


def _draft(img: Image.Image, max_dimension: int) -> None:
    original = img.size
    if max(original) > max_dimension:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: far faster on camera photos. It
        # keeps twice the target size, so the final LANCZOS step still has detail to use.
        scale = 2 * max_dimension / max(original)
        img.draft(None, (math.ceil(original[0] * scale), math.ceil(original[1] * scale)))


def _frame_count(img: Image.Image) -> int:
    # A JPEG's extra frames (MPO) are other pictures, never an animation.
    if img.format == "JPEG":
        return 1
    return int(getattr(img, "n_frames", 1))


def _verify_png(data: bytes) -> None:
    # Decoding alone skips the checksums of the pixel data; verify() checks every chunk.
    with Image.open(io.BytesIO(data), formats=("PNG",)) as img:
        img.verify()


def _read(img: Image.Image, original: tuple[int, int], max_dimension: int) -> _Source:
    img.load()
    loop = img.info.get("loop")  # read before seeking: later frames may not carry it
    orientation = _orientation(img)
    icc = img.info.get("icc_profile")
    jpeg_quality = _estimated_jpeg_quality(img) if img.format == "JPEG" else None
    source_mode = img.mode
    frames: list[Image.Image] = []
    durations: list[int] = []
    for index in range(_frame_count(img)):
        if index:
            img.seek(index)
            img.load()
        durations.append(max(0, min(_GIF_MAX_DURATION, int(img.info.get("duration", 0)))))
        frames.append(_normalized(img, orientation, icc, max_dimension))
    # Only GIF animations are served as they are: APNG and WebP ones become GIF.
    still_or_gif = len(frames) == 1 or img.format == "GIF"
    plain_mode = img.format != "JPEG" or source_mode in ("L", "RGB")  # not CMYK
    still_png = img.format == "PNG" and len(frames) == 1
    return _Source(
        format=str(img.format),
        frames=_uniform_alpha(frames),
        durations=tuple(durations),
        loop=loop,
        resized=max(original) > max_dimension,
        servable=still_or_gif and orientation == 1 and not icc and plain_mode,
        exact_png=still_png and source_mode in ("1", "L", "LA", "P", "PA", "RGB", "RGBA"),
        jpeg_quality=jpeg_quality,
    )


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(_EXIF_ORIENTATION, 1)
    except _DECODE_ERRORS:
        return 1  # broken EXIF: show the pixels as stored
    return int(value) if value in _ORIENTATION_FIX else 1


def _estimated_jpeg_quality(img: Image.Image) -> int | None:
    tables: dict[int, list[int]] = getattr(img, "quantization", {})
    if 0 not in tables:
        return None
    # Invert libjpeg's quality -> table scaling on the luminance table.
    scale = 100 * sum(tables[0]) / _IJG_LUMA_SUM
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return max(1, min(100, round(quality)))


def _normalized(frame: Image.Image, orientation: int, icc: object, max_side: int) -> Image.Image:
    img = _working_mode(frame)
    img = _within(img, max_side)
    img = _to_srgb(img, icc if isinstance(icc, bytes) else None)
    if orientation in _ORIENTATION_FIX:
        img = img.transpose(_ORIENTATION_FIX[orientation])
    img.info = {}  # convert() and friends copy info; nothing of it may reach an encoder
    return img


def _working_mode(frame: Image.Image) -> Image.Image:
    mode = frame.mode
    if mode == "CMYK":
        return frame.copy()  # _to_srgb converts it, with its profile when there is one
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit grey: scale to 8 bits rather than let convert() clip at 255.
        return frame.convert("I").point(lambda value: value * (1 / 257)).convert("L")
    if "A" in mode or "a" in mode or "transparency" in frame.info:
        return frame.convert("RGBA")
    if mode in ("1", "L"):
        return frame.convert("L")
    return frame.convert("RGB")


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    if icc and img.mode in ("RGB", "RGBA", "CMYK"):
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        try:
            converted = ImageCms.profileToProfile(
                img,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode=out_mode,
            )
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None  # a broken profile: keep the pixels as they are
        if converted is not None:
            return converted
    return img.convert("RGB") if img.mode == "CMYK" else img


def _uniform_alpha(frames: list[Image.Image]) -> tuple[Image.Image, ...]:
    # An alpha channel that is opaque everywhere costs bytes and rules out JPEG.
    if any(frame.mode == "RGBA" and _has_transparency(frame) for frame in frames):
        return tuple(frame.convert("RGBA") for frame in frames)
    return tuple(frame.convert("RGB") if frame.mode == "RGBA" else frame for frame in frames)


def _has_transparency(img: Image.Image) -> bool:
    lowest, _ = img.getchannel("A").getextrema()
    return bool(isinstance(lowest, int) and lowest < 255)


def _within(img: Image.Image, max_side: int) -> Image.Image:
    width, height = img.size
    if max(width, height) <= max_side:
        return img
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _scaled(img: Image.Image, linear: float) -> Image.Image:
    if linear >= 1:
        return img
    return _within(img, max(1, math.floor(max(img.size) * linear)))


def _shrunk(
    linear: float,
    size: float,
    budget: int,
    longest: int,
    exponent: float = _PIXEL_EXPONENT,
) -> float:
    """The next linear scale, from bytes ≈ pixels ** exponent, with a margin and a minimum step."""
    factor = min(_MIN_SHRINK, float((budget * _AIM / size) ** (1 / (2 * exponent))))
    new = linear * factor
    if longest * new < MIN_SIDE:
        raise ValueError(f"a budget of {budget} bytes does not fit even a {MIN_SIDE}-pixel image")
    return new


def _pixel_exponent(before: _Encoded, after: _Encoded) -> float:
    """Fit g of bytes ≈ pixels ** g from two encodings that differ only in size."""
    pixels = (before.width * before.height) / (after.width * after.height)
    if pixels <= 1 or before.size <= after.size:
        return _PIXEL_EXPONENT
    return max(0.3, min(1.2, math.log(before.size / after.size) / math.log(pixels)))


def _quality_cap(source: _Source) -> int:
    # Re-encoding above the source's own quality only adds bytes.
    if source.jpeg_quality is None:
        return MAX_QUALITY
    return max(MIN_QUALITY, min(MAX_QUALITY, source.jpeg_quality))


def _as_is(data: bytes, source: _Source, passes: int) -> AdaptedImage:
    width, height = source.frames[0].size
    return AdaptedImage(
        data=data,
        content_type=_SERVED_FORMATS[source.format],
        width=width,
        height=height,
        frames=len(source.frames),
        passes=passes,
    )


# --- serving the source without its metadata ------------------------------------------


def _without_metadata(data: bytes, fmt: str) -> bytes | None:
    """The same encoded pixels without EXIF, XMP, comments or text; None if unsure."""
    strip = {"JPEG": _jpeg_stripped, "PNG": _png_stripped, "GIF": _gif_stripped}[fmt]
    try:
        stripped = strip(data)
        # Pillow tolerates odd layouts that a byte-level cut may not: check the result.
        with (
            Image.open(io.BytesIO(stripped), formats=(fmt,)) as img,
            Image.open(io.BytesIO(data), formats=(fmt,)) as original,
        ):
            if (img.size, img.mode) != (original.size, original.mode):
                return None
            img.load()
    except (*_DECODE_ERRORS, UnidentifiedImageError):
        return None  # re-encode instead
    return stripped


def _jpeg_stripped(data: bytes) -> bytes:
    out, pos, scanning = bytearray(data[:2]), 2, False
    while True:
        if scanning and (data[pos] != 0xFF or data[pos + 1] == 0):
            end = _next_jpeg_marker(data, pos)  # entropy-coded data: copy as it is
            out += data[pos:end]
            pos = end
            continue
        if data[pos] != 0xFF:
            raise ValueError("junk between JPEG segments")
        marker = data[pos + 1]
        if marker == 0xD9:  # EOI; what follows (MPO pictures, junk) goes too
            return bytes(out + data[pos : pos + 2])
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            out += data[pos : pos + 2]
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if _keeps_jpeg_segment(marker, data[pos + 4 : end]):
            out += data[pos:end]
        scanning = scanning or marker == 0xDA  # SOS: entropy-coded data follows
        pos = end


def _next_jpeg_marker(data: bytes, pos: int) -> int:
    while True:
        pos = data.index(b"\xff", pos)
        following = data[pos + 1]
        if following != 0 and not 0xD0 <= following <= 0xD7:
            return pos
        pos += 2  # a stuffed 0xFF or a restart marker: still inside the scan


def _keeps_jpeg_segment(marker: int, body: bytes) -> bool:
    if marker == 0xFE:  # comment
        return False
    if 0xE0 <= marker <= 0xEF:  # APPn: EXIF, XMP, ICC, MPF, Photoshop...
        start = _KEPT_JPEG_APPS.get(marker)
        return start is not None and body.startswith(start)
    return True


def _png_stripped(data: bytes) -> bytes:
    out, pos = bytearray(data[:8]), 8
    while True:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if kind in _KEPT_PNG_CHUNKS:
            out += data[pos:end]
        if kind == b"IEND":
            return bytes(out)
        pos = end


def _gif_stripped(data: bytes) -> bytes:
    pos = 13 + _gif_colour_table(data[10])
    out = bytearray(data[:pos])
    while True:
        block = data[pos]
        if block == 0x3B:  # trailer
            return bytes(out + b"\x3b")
        if block == 0x2C:  # image descriptor, colour table, LZW code size, data
            end = _after_sub_blocks(data, pos + 11 + _gif_colour_table(data[pos + 9]))
            out += data[pos:end]
        elif block == 0x21:  # extension: label, then sub-blocks
            end = _after_sub_blocks(data, pos + 2)
            if _keeps_gif_extension(data[pos + 1], data[pos + 2 : end]):
                out += data[pos:end]
        else:
            raise ValueError(f"unexpected GIF block {block:#x}")
        pos = end


def _gif_colour_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _after_sub_blocks(data: bytes, pos: int) -> int:
    while size := data[pos]:
        pos += size + 1
    return pos + 1


def _keeps_gif_extension(label: int, body: bytes) -> bool:
    if label == 0xFE:  # comment
        return False
    if label == 0xFF:  # application: only the loop count is kept (XMP and others go)
        return body[1:12] in _KEPT_GIF_APPS
    return True  # graphic control (timing, transparency) and plain text are picture


# --- stills ---------------------------------------------------------------------------


def _adapt_still(img: Image.Image, budget: int, max_quality: int) -> AdaptedImage:
    if img.mode == "RGBA":
        return _fit_png(img, budget)  # transparency stays transparent: never JPEG
    if not _looks_flat(img):
        return _fit_jpeg(img, budget, max_quality)
    png = _encode_png(img)
    exact = img.mode == "L" or img.getcolors(PALETTE_COLORS) is not None
    if exact and png.size <= budget:
        return _still(png, "image/png", 1)
    jpeg = _encode_jpeg(img, max_quality)
    if png.size <= jpeg.size:
        return _fit_png(img, budget, first=png, passes=2)
    return _fit_jpeg(img, budget, max_quality, first=jpeg, passes=2)


def _looks_flat(img: Image.Image) -> bool:
    """Screenshots, logos, drawings: large runs of identical pixels, where PNG wins."""
    if img.mode == "RGB" and img.getcolors(PALETTE_COLORS) is not None:
        return True
    diff = ImageChops.difference(img, ImageChops.offset(img, 1, 0))
    if diff.mode != "L":
        red, green, blue = diff.split()
        diff = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    same = diff.histogram()[0]
    return same >= _FLAT_SHARE * img.width * img.height


def _still(encoded: _Encoded, content_type: str, passes: int) -> AdaptedImage:
    return AdaptedImage(
        data=encoded.data,
        content_type=content_type,
        width=encoded.width,
        height=encoded.height,
        frames=1,
        passes=passes,
    )


def _encode_jpeg(img: Image.Image, quality: int) -> _Encoded:
    out = io.BytesIO()
    # subsampling=2 is 4:2:0: half the chroma, which photos do not miss.
    img.save(out, "JPEG", quality=quality, optimize=True, subsampling=2)
    return _Encoded(out.getvalue(), img.width, img.height, quality)


def _encode_png(img: Image.Image) -> _Encoded:
    out = io.BytesIO()
    _png_pixels(img).save(out, "PNG", optimize=True)
    return _Encoded(out.getvalue(), img.width, img.height)


def _lossless_png(img: Image.Image) -> _Encoded:
    pixels = img
    if img.mode == "RGB" and img.getcolors(PALETTE_COLORS) is not None:
        indexed = _png_pixels(img)
        if ImageChops.difference(indexed.convert("RGB"), img).getbbox() is None:
            pixels = indexed  # checked, not assumed: the palette kept every colour
    out = io.BytesIO()
    pixels.save(out, "PNG", optimize=True)
    return _Encoded(out.getvalue(), img.width, img.height)


def _png_pixels(img: Image.Image) -> Image.Image:
    if img.mode == "L":
        return img
    if img.mode == "RGB" and img.getcolors(PALETTE_COLORS) is not None:
        # Median cut keeps every colour when there are few enough: lossless.
        return img.quantize(PALETTE_COLORS, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    # Octree is the fast method that handles alpha; undithered runs compress best.
    return img.quantize(PALETTE_COLORS, Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def _fit_png(
    base: Image.Image, budget: int, first: _Encoded | None = None, passes: int = 0
) -> AdaptedImage:
    linear, exponent = 1.0, _PIXEL_EXPONENT
    encoded = first or _encode_png(base)
    passes += first is None
    while encoded.size > budget:
        linear = _shrunk(linear, encoded.size, budget, max(base.size), exponent)
        smaller = _encode_png(_scaled(base, linear))
        passes += 1
        exponent = _pixel_exponent(encoded, smaller)
        encoded = smaller
    return _still(encoded, "image/png", passes)


def _fit_jpeg(
    base: Image.Image,
    budget: int,
    max_quality: int,
    first: _Encoded | None = None,
    passes: int = 0,
) -> AdaptedImage:
    linear = 1.0
    image = base
    known = [first] if first else []
    start = max_quality
    exponent = _TYPICAL_EXPONENT
    while True:
        search = _QualitySearch(image, budget, max_quality, exponent, known)
        fit = search.run(start, passes_left=FIT_PASSES - passes)
        passes += search.passes
        if fit is not None:
            return _still(fit, "image/jpeg", passes)
        # Even the lowest quality is too big: drop pixels so SCALED_QUALITY should fit.
        exponent = search.exponent
        start = min(SCALED_QUALITY, max_quality)
        linear = _shrunk(linear, search.predicted_size(start), budget, max(base.size))
        image = _scaled(base, linear)
        known = []


def _quantiser_scale(quality: float) -> float:
    """libjpeg's table scaling for a quality, in percent of the standard tables."""
    return 5000 / quality if quality < 50 else 200 - 2 * quality


def _quality_for_scale(scale: float) -> float:
    return 5000 / scale if scale > 100 else (200 - scale) / 2


class _QualitySearch:
    """The highest JPEG quality that fits, at one size, in few encoder passes.

    Each guess comes from the model bytes ≈ scale ** -k through the measurements
    nearest the budget, clamped into the bracket the measurements leave open.
    """

    def __init__(
        self,
        image: Image.Image,
        budget: int,
        max_quality: int,
        exponent: float,
        known: Sequence[_Encoded],
    ) -> None:
        self.image = image
        self.budget = budget
        self.max_quality = max_quality
        self.exponent = exponent
        self.trials: list[_Encoded] = list(known)
        self.passes = 0

    def run(self, start: int, passes_left: int) -> _Encoded | None:
        while True:
            fit = max(self._fits(), key=lambda t: t.quality, default=None)
            fail = min(self._fails(), key=lambda t: t.quality, default=None)
            if fail is not None and fail.quality <= MIN_QUALITY:
                return None
            if fit is not None and self._settled(fit, passes_left):
                return fit
            low = fit.quality + 1 if fit else MIN_QUALITY
            high = fail.quality - 1 if fail else self.max_quality
            if low > high:
                return fit
            guess = start if not self.trials else self._guess(fit, fail)
            self.trials.append(_encode_jpeg(self.image, max(low, min(high, guess))))
            self.passes += 1

    def predicted_size(self, quality: int) -> float:
        ranked = sorted(self.trials, key=lambda t: abs(t.quality - quality))
        if len(ranked) >= 2:
            self._refit(ranked[0], ranked[1])
        nearest = ranked[0]
        ratio = _quantiser_scale(nearest.quality) / _quantiser_scale(quality)
        return float(nearest.size * ratio**self.exponent)

    def _settled(self, fit: _Encoded, passes_left: int) -> bool:
        return (
            fit.quality >= self.max_quality
            or fit.size >= self.budget * _CLOSE_ENOUGH
            or self.passes >= passes_left
        )

    def _fits(self) -> list[_Encoded]:
        return [t for t in self.trials if t.size <= self.budget]

    def _fails(self) -> list[_Encoded]:
        return [t for t in self.trials if t.size > self.budget]

    def _guess(self, fit: _Encoded | None, fail: _Encoded | None) -> int:
        pair = [t for t in (fit, fail) if t is not None]
        if len(pair) < 2:
            pair = sorted(self.trials, key=lambda t: abs(t.size - self.budget))[:2]
        if len(pair) == 2:
            self._refit(pair[0], pair[1])
        anchor = pair[0]
        scale = _quantiser_scale(anchor.quality) * (anchor.size / (self.budget * _AIM)) ** (
            1 / self.exponent
        )
        return round(_quality_for_scale(scale))

    def _refit(self, a: _Encoded, b: _Encoded) -> None:
        if a.quality == b.quality or a.size == b.size:
            return
        exponent = math.log(a.size / b.size) / math.log(
            _quantiser_scale(b.quality) / _quantiser_scale(a.quality)
        )
        self.exponent = max(0.1, min(3.0, exponent))


# --- animations -----------------------------------------------------------------------


def _adapt_animation(source: _Source, budget: int) -> AdaptedImage:
    """Keep the motion if at all possible: fewer colours, then fewer pixels, then
    fewer frames (same total time); a still of the first frame only as a last resort.
    """
    frames, durations = source.frames, source.durations
    floor = min(1.0, MIN_ANIMATION_SIDE / max(frames[0].size))
    colours, linear, stride, passes = _GIF_COLOURS, 1.0, 1, 0
    exponent = _PIXEL_EXPONENT
    larger: tuple[float, _Encoded] | None = None  # the last failure at this colours/stride

    def encode(scale: float) -> _Encoded:
        nonlocal passes
        passes += 1
        kept, times = _every_nth(frames, durations, stride)
        return _encode_gif([_scaled(f, scale) for f in kept], times, source.loop, colours)

    while len(frames[::stride]) >= 2:
        encoded = encode(linear)
        if encoded.size <= budget:
            if larger is not None and encoded.size < budget * _REFINE_BELOW:
                encoded = _refined(encoded, linear, larger, budget, encode)
            return _animation(encoded.data, passes)
        if larger is not None:
            exponent = _pixel_exponent(larger[1], encoded)
        larger = (linear, encoded)
        ratio = budget * _AIM / encoded.size
        if colours == _GIF_COLOURS:
            colours, larger = _GIF_FEWER_COLOURS, None  # the cheapest loss comes first
            continue
        wanted = linear * min(_MIN_SHRINK, float(ratio ** (1 / (2 * exponent))))
        if wanted >= floor:
            linear = wanted
            continue
        # Shrink to the floor and drop frames for the rest (bytes ≈ frame count).
        remaining = ratio / (floor / linear) ** (2 * exponent)
        linear, larger = floor, None
        stride *= 2 ** max(1, math.ceil(math.log2(1 / max(remaining, 1e-9))))
    still = _adapt_still(frames[0], budget, MAX_QUALITY)
    return AdaptedImage(
        data=still.data,
        content_type=still.content_type,
        width=still.width,
        height=still.height,
        frames=1,
        passes=passes + still.passes,
    )


def _refined(
    fit: _Encoded,
    linear: float,
    larger: tuple[float, _Encoded],
    budget: int,
    encode: Callable[[float], _Encoded],
) -> _Encoded:
    """One pass between a fit well under the budget and the larger failure before it."""
    exponent = _pixel_exponent(larger[1], fit)
    between = linear * float((budget * _REFINE_AIM / fit.size) ** (1 / (2 * exponent)))
    if between >= larger[0] or between <= linear:
        return fit
    candidate = encode(between)
    return candidate if candidate.size <= budget else fit


def _every_nth(
    frames: Sequence[Image.Image], durations: Sequence[int], stride: int
) -> tuple[list[Image.Image], list[int]]:
    # Each kept frame shows for the frames dropped after it: total time is kept.
    kept = list(frames[::stride])
    times = [
        min(_GIF_MAX_DURATION, sum(durations[i : i + stride]))
        for i in range(0, len(durations), stride)
    ]
    return kept, times


def _encode_gif(
    frames: Sequence[Image.Image], durations: Sequence[int], loop: int | None, colours: int
) -> _Encoded:
    transparent = frames[0].mode == "RGBA"
    palette = _shared_palette(frames, colours)
    indexed = [_indexed(frame, palette, transparent) for frame in frames]
    if not transparent:
        indexed = _steadied(frames, indexed)
    options: dict[str, object] = {"duration": list(durations), "optimize": True}
    if loop is not None:
        options["loop"] = loop
    if transparent:
        # Restore to background between frames so pixels can turn transparent again.
        options.update(transparency=_GIF_TRANSPARENT, disposal=2)
    out = io.BytesIO()
    indexed[0].save(out, "GIF", save_all=True, append_images=indexed[1:], **options)
    return _Encoded(out.getvalue(), frames[0].width, frames[0].height)


def _shared_palette(frames: Sequence[Image.Image], colours: int) -> Image.Image:
    # One palette for all frames keeps unchanged pixels identical from frame to
    # frame, which GIF then stores as a small delta; built from a sample montage.
    sample = list(frames[:: max(1, len(frames) // 8)])[:8]
    thumbs = [_within(frame.convert("RGB"), 256) for frame in sample]
    width = max(t.width for t in thumbs)
    montage = Image.new("RGB", (width, sum(t.height for t in thumbs)))
    top = 0
    for thumb in thumbs:
        montage.paste(thumb, (0, top))
        top += thumb.height
    return montage.quantize(colours, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def _steadied(frames: Sequence[Image.Image], indexed: list[Image.Image]) -> list[Image.Image]:
    """Pixels that barely changed keep the index shown before.

    Many GIFs quantise each frame on its own, so a still background flickers
    between near colours; without this every frame would be stored whole.
    """
    steady = [indexed[0]]
    shown = indexed[0].convert("RGB")
    for frame, current in zip(frames[1:], indexed[1:], strict=True):
        red, green, blue = ImageChops.difference(frame.convert("RGB"), shown).split()
        change = ImageChops.lighter(ImageChops.lighter(red, green), blue)
        kept = current.copy()
        kept.paste(steady[-1], mask=change.point(_STEADY_MASK))
        steady.append(kept)
        shown = kept.convert("RGB")
    return steady


def _indexed(frame: Image.Image, palette: Image.Image, transparent: bool) -> Image.Image:
    indexed = frame.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE)
    if transparent:
        # Pad the palette so that the transparent slot is exactly index 255.
        colours = (indexed.getpalette() or [])[: 3 * _GIF_TRANSPARENT]
        indexed.putpalette(colours + [0] * (3 * _GIF_TRANSPARENT - len(colours)) + [0, 0, 0])
        clear = frame.getchannel("A").point(_CLEAR_MASK)
        indexed.paste(_GIF_TRANSPARENT, mask=clear)
    return indexed


def _animation(data: bytes, passes: int) -> AdaptedImage:
    with Image.open(io.BytesIO(data)) as img:
        # Identical consecutive frames are merged by the encoder: count what was written.
        frames = int(getattr(img, "n_frames", 1))
        width, height = img.size
    return AdaptedImage(data, "image/gif", width, height, frames, passes)


__all__ = ["AdaptedImage", "CorruptImage", "adapt_image", "jpeg_scans"]
