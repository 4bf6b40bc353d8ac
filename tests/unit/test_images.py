"""Image adaptation (docs/media.md): decode fully, keep only pixels, fit the budget.

Every image is generated here with Pillow, small and deterministic (seeded
random bytes, gradients, drawings); nothing is fetched.
"""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageCms, ImageDraw, ImageFilter, ImageFont, PngImagePlugin

from mmsapi.media.images import FIT_PASSES, AdaptedImage, CorruptImage, adapt_image

KB = 1024


# --- generated inputs -----------------------------------------------------------------


def noise(size: tuple[int, int], seed: int) -> Image.Image:
    return Image.frombytes("L", size, random.Random(seed).randbytes(size[0] * size[1]))


def photo(width: int, height: int, seed: int = 1) -> Image.Image:
    """Smooth blobs and gradients under sensor-like grain: compresses like a photo."""
    blobs = [
        noise((width // 40, height // 40), seed + i).resize(
            (width, height), Image.Resampling.BICUBIC
        )
        for i in range(3)
    ]
    gradient = Image.linear_gradient("L").resize((width, height))
    img = Image.merge("RGB", (Image.blend(blobs[0], gradient, 0.4), blobs[1], blobs[2]))
    grain = noise((width, height), seed + 99)
    return Image.blend(img, Image.merge("RGB", (grain, grain, grain)), 0.15)


def screenshot(width: int, height: int, seed: int = 2) -> Image.Image:
    """Flat bars and bubbles with anti-aliased text, like a phone screen."""
    rng = random.Random(seed)
    img = Image.new("RGB", (width, height), (245, 245, 247))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=28)
    draw.rectangle((0, 0, width, 120), fill=(30, 90, 200))
    for y in range(160, height - 60, 64):
        if rng.random() < 0.4:
            draw.rounded_rectangle(
                (24, y - 10, width - 160, y + 44), radius=18, fill=(225, 232, 245)
            )
        words = " ".join(rng.choice(("sale", "today", "coupon", "MMS")) for _ in range(5))
        draw.text((40, y), words, font=font, fill=(20, 20, 25))
    return img


def logo(side: int) -> Image.Image:
    """A soft-edged disc with grain on a fully transparent background."""
    img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    disc = Image.new("L", (side, side), 0)
    ImageDraw.Draw(disc).ellipse((side // 8, side // 8, side * 7 // 8, side * 7 // 8), fill=255)
    colour = Image.merge("RGB", (noise((side, side), 7), Image.new("L", (side, side), 120), disc))
    img.paste(colour, mask=disc.filter(ImageFilter.GaussianBlur(4)))
    return img


def frames_of(count: int, size: tuple[int, int], seed: int = 3) -> list[Image.Image]:
    """A ball crossing a textured backdrop: every frame differs a little."""
    backdrop = photo(*size, seed=seed)
    frames = []
    for index in range(count):
        frame = backdrop.copy()
        x = index * (size[0] - 40) // max(1, count - 1)
        ImageDraw.Draw(frame).ellipse((x, 20, x + 40, 60), fill=(255, 200, 0))
        frames.append(frame)
    return frames


def encoded(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def gif(frames: list[Image.Image], durations: list[int], **options: object) -> bytes:
    # One shared palette: quick to write, and a still background stays identical.
    palette = frames[0].quantize(255)
    indexed = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    return encoded(
        indexed[0], "GIF", save_all=True, append_images=indexed[1:], duration=durations, **options
    )


def opened(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def gif_durations(data: bytes) -> list[int]:
    img = opened(data)
    durations = []
    for index in range(getattr(img, "n_frames", 1)):
        img.seek(index)
        durations.append(int(img.info["duration"]))
    return durations


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header claims a canvas far bigger than its data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" + b"\0" * 3)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def with_bad_pixel_crc(png: bytes) -> bytes:
    """Flip the CRC of the first IDAT chunk: headers still parse, pixel data is damaged."""
    offset = 8
    while True:
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        if png[offset + 4 : offset + 8] == b"IDAT":
            crc_at = offset + 8 + length
            flipped = bytes([png[crc_at] ^ 0xFF])
            return png[:crc_at] + flipped + png[crc_at + 1 :]
        offset += 12 + length


@pytest.fixture(scope="module")
def big_photo_jpeg() -> bytes:
    return encoded(photo(3000, 2000), "JPEG", quality=95)


def assert_fits(result: AdaptedImage, budget: int, max_dimension: int = 1600) -> Image.Image:
    assert len(result.data) <= budget
    assert max(result.width, result.height) <= max_dimension
    img = opened(result.data)
    assert img.size == (result.width, result.height)
    assert Image.MIME[str(img.format)] == result.content_type
    return img


# --- photos ---------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [100 * KB, 300 * KB])
def test_a_12_megapixel_class_photo_fits_the_budget_in_few_passes(
    big_photo_jpeg: bytes, budget: int
) -> None:
    # Given a noisy 3000x2000 photo far over the budget
    assert len(big_photo_jpeg) > 3 * budget
    # When it is adapted
    result = adapt_image(big_photo_jpeg, budget_bytes=budget)
    # Then it is a JPEG within the budget and the size cap, found in few passes
    assert_fits(result, budget)
    assert result.content_type == "image/jpeg"
    assert 1 <= result.passes <= FIT_PASSES
    assert result.width / result.height == pytest.approx(1.5, abs=0.01)


def test_the_fit_uses_most_of_the_budget(big_photo_jpeg: bytes) -> None:
    # Given a budget the photo can meet without shrinking
    budget = 300 * KB
    # When it is adapted
    result = adapt_image(big_photo_jpeg, budget_bytes=budget)
    # Then the quality search did not stop far below the budget
    assert len(result.data) >= 0.8 * budget


def test_a_small_jpeg_under_budget_is_served_as_it_is() -> None:
    # Given a small JPEG without metadata, already within the budget
    source = encoded(photo(320, 240), "JPEG", quality=80)
    # When it is adapted
    result = adapt_image(source, budget_bytes=100 * KB)
    # Then the very same bytes come back, without any encoder pass
    assert result.data == source
    assert (result.passes, result.width, result.height, result.frames) == (0, 320, 240, 1)


@pytest.mark.parametrize("budget", [4 * KB, 20 * KB, 60 * KB])
def test_every_budget_is_met(budget: int) -> None:
    # Given a photo over each budget
    source = encoded(photo(800, 600, seed=5), "JPEG", quality=92)
    # When it is adapted
    result = adapt_image(source, budget_bytes=budget)
    # Then the result never exceeds the budget
    assert_fits(result, budget)


def test_an_absurd_budget_is_a_value_error() -> None:
    # Given a budget too small for even a 16-pixel thumbnail
    source = encoded(photo(400, 300), "JPEG", quality=90)
    # When / Then adapting it is refused as a caller error, not as a corrupt image
    with pytest.raises(ValueError, match="does not fit"):
        adapt_image(source, budget_bytes=60)


def test_adaptation_is_deterministic_across_threads() -> None:
    # Given two different images
    sources = [
        encoded(photo(640, 480, seed=8), "JPEG", quality=95),
        encoded(screenshot(400, 700), "PNG"),
    ]
    expected = [adapt_image(s, budget_bytes=30 * KB) for s in sources]
    # When they are adapted concurrently, several times
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda s: adapt_image(s, budget_bytes=30 * KB), sources * 3))
    # Then every run gives the same bytes
    assert results == expected * 3


# --- formats, metadata, colour --------------------------------------------------------


def test_a_flat_screenshot_stays_png_when_png_is_smaller() -> None:
    # Given a screenshot that must be shrunk (so it is re-encoded)
    img = screenshot(900, 1800)
    source = encoded(img, "PNG")
    # When it is adapted to 1200 px
    result = adapt_image(source, budget_bytes=300 * KB, max_dimension=1200)
    # Then it stays PNG, smaller than a high-quality JPEG of the same pixels
    out = assert_fits(result, 300 * KB, 1200)
    assert result.content_type == "image/png"
    assert len(result.data) < len(encoded(out.convert("RGB"), "JPEG", quality=90))


def test_transparency_is_kept_as_png_never_a_black_background() -> None:
    # Given a transparent logo that must be shrunk
    source = encoded(logo(1000), "PNG")
    # When it is adapted
    result = adapt_image(source, budget_bytes=100 * KB, max_dimension=800)
    # Then it is a PNG whose background is still transparent (decision: keep PNG)
    out = assert_fits(result, 100 * KB, 800).convert("RGBA")
    assert result.content_type == "image/png"
    assert out.getpixel((0, 0)) == (0, 0, 0, 0)
    centre = out.getpixel((out.width // 2, out.height // 2))
    assert isinstance(centre, tuple)
    assert centre[3] >= 250  # the palette may round alpha by a step or two


@pytest.mark.parametrize(
    ("image", "content_type"),
    [(photo(400, 300), "image/jpeg"), (logo(200), "image/png")],
    ids=["opaque", "transparent"],
)
def test_webp_is_converted(image: Image.Image, content_type: str) -> None:
    # Given a WebP, which not every handset shows
    source = encoded(image, "WEBP", quality=90)
    # When it is adapted with room to spare
    result = adapt_image(source, budget_bytes=500 * KB)
    # Then it becomes JPEG, or PNG when it has real transparency
    assert_fits(result, 500 * KB)
    assert result.content_type == content_type


def test_exif_orientation_is_applied_and_all_metadata_is_stripped() -> None:
    # Given a JPEG stored sideways (orientation 6), with GPS and an ICC profile:
    # red on the left of the stored pixels, blue on the right
    img = Image.new("RGB", (400, 200), (220, 20, 20))
    img.paste((20, 20, 220), (200, 0, 400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 24.0)  # GPSLatitude
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = encoded(img, "JPEG", quality=90, exif=exif.tobytes(), icc_profile=icc)
    # When it is adapted
    result = adapt_image(source, budget_bytes=100 * KB)
    # Then it is upright (width and height swapped, red on top) and carries no metadata
    out = assert_fits(result, 100 * KB).convert("RGB")
    assert (result.width, result.height) == (200, 400)
    top, bottom = out.getpixel((100, 50)), out.getpixel((100, 350))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[0] > 150 > top[2]
    assert bottom[2] > 150 > bottom[0]
    assert not {"exif", "icc_profile", "xmp", "comment"} & set(out.info)
    assert len(opened(result.data).getexif()) == 0
    # and it did not grow: the source already fitted the budget
    assert len(result.data) <= len(source)


def test_metadata_of_a_fitting_source_is_cut_without_touching_its_pixels() -> None:
    # Given an upright JPEG with GPS and a comment, and a PNG with text chunks
    img = photo(200, 150, seed=6)
    exif = Image.Exif()
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 24.0)
    jpeg = encoded(img, "JPEG", quality=80, exif=exif.tobytes(), comment=b"Jane's phone")
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "Jane")
    text.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta/>")
    png = encoded(img, "PNG", pnginfo=text)
    for source in (jpeg, png):
        # When each is adapted with a budget it already meets
        result = adapt_image(source, budget_bytes=len(source))
        # Then the pixels are exactly those of the source, and nothing else is left
        out, original = opened(result.data), opened(source)
        assert out.tobytes() == original.tobytes()
        assert not {"exif", "comment", "Author", "XML:com.adobe.xmp"} & set(out.info)
        assert len(result.data) < len(source)
        assert result.passes <= 1


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped() -> None:
    # Given a 16-bit grey gradient that must be shrunk
    ramp = Image.linear_gradient("L").resize((300, 200)).convert("I")
    source = encoded(ramp.point(lambda value: value * 257).convert("I;16"), "PNG")
    # When it is adapted
    result = adapt_image(source, budget_bytes=100 * KB, max_dimension=150)
    # Then the ramp still spans dark to light
    low, high = assert_fits(result, 100 * KB, 150).convert("L").getextrema()
    assert isinstance(low, int)
    assert isinstance(high, int)
    assert low < 10
    assert high > 245


def test_a_cmyk_jpeg_becomes_rgb() -> None:
    # Given a CMYK photo with a pure cyan patch in the middle
    img = photo(300, 200).convert("CMYK")
    img.paste((255, 0, 0, 0), (100, 60, 200, 140))
    source = encoded(img, "JPEG", quality=90)
    # When it is adapted
    result = adapt_image(source, budget_bytes=100 * KB)
    # Then it is an RGB JPEG that shows the patch as cyan
    out = assert_fits(result, 100 * KB)
    assert (result.content_type, out.mode) == ("image/jpeg", "RGB")
    patch = out.getpixel((150, 100))
    assert isinstance(patch, tuple)
    red, green, blue = patch[:3]
    assert red < 40
    assert green > 210
    assert blue > 210


# --- animations -----------------------------------------------------------------------


@pytest.mark.parametrize("comment", [None, b"made with some editor"], ids=["clean", "comment"])
def test_an_animation_under_budget_keeps_its_frames_and_durations(comment: bytes | None) -> None:
    # Given a small animation, with or without a comment to strip
    durations = [100, 200, 100, 300, 100, 200]
    options: dict[str, object] = {"loop": 0}
    if comment:
        options["comment"] = comment
    source = gif(frames_of(6, (120, 90)), durations, **options)
    # When it is adapted with room to spare
    result = adapt_image(source, budget_bytes=len(source) * 2)
    # Then every frame and every duration is kept, and the comment is gone
    assert_fits(result, len(source) * 2)
    assert (result.content_type, result.frames) == ("image/gif", 6)
    assert gif_durations(result.data) == durations
    assert "comment" not in opened(result.data).info


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"], ids=["apng", "animated-webp"])
def test_other_animations_become_gif_with_their_timing(fmt: str) -> None:
    # Given an APNG or an animated WebP with uneven timing
    durations = [100, 300, 100, 200]
    frames = frames_of(4, (160, 120))
    source = encoded(
        frames[0], fmt, save_all=True, append_images=frames[1:], duration=durations, loop=0
    )
    # When it is adapted with room to spare
    result = adapt_image(source, budget_bytes=500 * KB)
    # Then it is a GIF with the same frames and timing
    assert_fits(result, 500 * KB)
    assert (result.content_type, result.frames) == ("image/gif", 4)
    assert gif_durations(result.data) == durations


def test_a_transparent_animation_stays_transparent() -> None:
    # Given a disc moving over a transparent background, as an APNG
    frames = []
    for index in range(5):
        frame = Image.new("RGBA", (160, 120), (0, 0, 0, 0))
        ImageDraw.Draw(frame).ellipse((index * 20, 20, index * 20 + 40, 60), fill="red")
        frames.append(frame)
    source = encoded(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    # When it is adapted
    result = adapt_image(source, budget_bytes=100 * KB)
    # Then each GIF frame shows the disc where it is, and transparency where it was
    out = opened(result.data)
    assert (result.content_type, result.frames) == ("image/gif", 5)
    for index in range(1, 5):
        out.seek(index)
        shown = out.convert("RGBA")
        assert shown.getpixel((index * 20 + 20, 40)) == (255, 0, 0, 255)
        assert shown.getpixel((index * 20 - 15, 40)) == (0, 0, 0, 0)


def test_an_animation_over_budget_stays_animated_and_keeps_its_total_time() -> None:
    # Given an animation three times over the budget
    durations = [80] * 16
    source = gif(frames_of(16, (320, 240)), durations, loop=0)
    budget = len(source) // 3
    # When it is adapted
    result = adapt_image(source, budget_bytes=budget)
    # Then it still moves, within the budget, for the same total time
    assert_fits(result, budget)
    assert result.content_type == "image/gif"
    assert result.frames > 1
    assert sum(gif_durations(result.data)) == sum(durations)
    assert opened(result.data).info.get("loop") == 0


def test_a_tiny_budget_gives_the_first_frame_as_a_still() -> None:
    # Given an animation and a budget too small for any two frames
    source = gif(frames_of(8, (320, 240)), [100] * 8)
    # When it is adapted
    result = adapt_image(source, budget_bytes=3 * KB)
    # Then the first frame comes back as a still JPEG or PNG
    assert_fits(result, 3 * KB)
    assert result.content_type in ("image/jpeg", "image/png")
    assert result.frames == 1


# --- corrupt and hostile inputs -------------------------------------------------------


def truncated_jpeg() -> bytes:
    whole = encoded(photo(320, 240), "JPEG", quality=90)
    return whole[: len(whole) // 2]


def random_bytes() -> bytes:
    return random.Random(4).randbytes(4096)


def bad_crc_png() -> bytes:
    return with_bad_pixel_crc(encoded(screenshot(200, 300), "PNG"))


def truncated_png() -> bytes:
    whole = encoded(photo(200, 150), "PNG")
    return whole[: len(whole) * 2 // 3]


def truncated_gif() -> bytes:
    whole = gif(frames_of(4, (120, 90)), [100] * 4)
    return whole[: len(whole) - 300]


@pytest.mark.parametrize(
    "make",
    [
        truncated_jpeg,
        random_bytes,
        lambda: b"",
        bad_crc_png,
        truncated_png,
        truncated_gif,
        lambda: png_claiming(100_000, 100_000),
        lambda: png_claiming(9_000, 9_000),  # 81 MP: under Pillow's own limit, over ours
    ],
    ids=[
        "truncated-jpeg",
        "random-bytes",
        "empty",
        "bad-crc-png",
        "truncated-png",
        "truncated-gif",
        "bomb-10gp",
        "bomb-81mp",
    ],
)
def test_corrupt_inputs_raise_corrupt_image_quickly(make: Callable[[], bytes]) -> None:
    # Given bytes that are not a complete image of an acceptable size
    data = make()
    # When they are adapted
    start = time.perf_counter()
    with pytest.raises(CorruptImage):
        adapt_image(data, budget_bytes=300 * KB)
    # Then they are refused without decoding a huge canvas
    assert time.perf_counter() - start < 1.0


def test_damaged_files_give_corrupt_image_or_a_valid_fitting_image() -> None:
    # Given small valid files of each kind, damaged at seeded random places
    rng = random.Random(11)
    seeds = [
        encoded(photo(96, 72), "JPEG", quality=85, comment=b"c"),
        encoded(photo(96, 72), "JPEG", quality=85, progressive=True),
        encoded(screenshot(80, 120), "PNG"),
        gif(frames_of(3, (60, 40)), [50, 60, 70], loop=0, comment=b"c"),
        encoded(photo(64, 48), "WEBP"),
    ]
    for _ in range(150):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        budget = rng.choice([3 * KB, 200 * KB])
        # When each is adapted
        try:
            result = adapt_image(bytes(data), budget_bytes=budget)
        except CorruptImage:
            continue
        # Then what comes back is a complete image within the budget
        assert_fits(result, budget)
