"""Image fitting: adapt_image next to the naive quality ladder, on generated inputs.

Inputs (deterministic, generated here): a 12-megapixel photo-like JPEG (q=95),
a phone screenshot-like PNG and a 24-frame animated GIF. Each is fitted into
300 KB and 100 KB by adapt_image and by the naive method: decode, shrink to
1600 px, JPEG quality 95, 90, ... 35 until it fits, then halve the size and
repeat (stills only: an animation gets its first frame).

SSIM is measured against the source on a 256x256 grayscale downsample (first
frame, transparency over white), with 8x8 windows every 4 pixels, in plain
Python. Run: .venv/bin/python -m benchmarks.image_fit
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from benchmarks.goals import Figure, record
from mmsapi.media.images import adapt_image

BUDGETS = (300 * 1024, 100 * 1024)
MAX_DIMENSION = 1600
SSIM_SIDE = 256
SSIM_WINDOW = 8
SSIM_STEP = 4
NAIVE_QUALITIES = range(95, 34, -5)


@dataclass(frozen=True)
class Outcome:
    ms: float
    passes: int
    data: bytes
    content_type: str


# --- inputs ---------------------------------------------------------------------------


def noise(size: tuple[int, int], seed: int) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))


def photo(width: int = 4000, height: int = 3000, seed: int = 1) -> Image.Image:
    """Smooth blobs, gradients, shapes and sensor-like grain: compresses like a photo."""
    rng = random.Random(seed)
    blobs = [
        noise((width // 40, height // 40), seed + i).resize(
            (width, height), Image.Resampling.BICUBIC
        )
        for i in range(3)
    ]
    across = Image.linear_gradient("L").rotate(90).resize((width, height))
    down = Image.linear_gradient("L").resize((width, height))
    img = Image.merge(
        "RGB",
        (
            Image.blend(blobs[0], across, 0.4),
            Image.blend(blobs[1], down, 0.4),
            Image.blend(blobs[2], across, 0.2),
        ),
    )
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y, side = rng.randrange(width), rng.randrange(height), rng.randrange(50, width // 6)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + side, y + side), fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(3))
    grain = noise((width, height), seed + 99)
    return Image.blend(img, Image.merge("RGB", (grain, grain, grain)), 0.25)


def screenshot(width: int = 1170, height: int = 2532, seed: int = 2) -> Image.Image:
    """A chat-like phone screen: flat bars and bubbles, anti-aliased text."""
    rng = random.Random(seed)
    img = Image.new("RGB", (width, height), (245, 245, 247))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=32)
    draw.rectangle((0, 0, width, 170), fill=(30, 90, 200))
    draw.text((48, 70), "Messages", font=font, fill="white")
    words = ("hello", "coupon", "today", "MMS", "sale", "50%", "offer", "store", "near", "you")
    y = 220
    while y < height - 80:
        line = " ".join(rng.choice(words) for _ in range(rng.randrange(3, 9)))
        if rng.random() < 0.4:
            draw.rounded_rectangle(
                (30, y - 14, width - 240, y + 54), radius=24, fill=(225, 232, 245)
            )
        draw.text((56, y), line, font=font, fill=(20, 20, 25))
        y += 76
    return img


def animation(width: int = 480, height: int = 360, count: int = 24) -> list[Image.Image]:
    """Balls moving over a gradient: the usual shape of a promotional GIF."""
    backdrop = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize((width, height)),
            Image.new("L", (width, height), 60),
            Image.linear_gradient("L").rotate(90).resize((width, height)),
        ),
    )
    frames = []
    for index in range(count):
        frame = backdrop.copy()
        draw = ImageDraw.Draw(frame)
        for ball in range(10):
            x = (index * 14 + ball * 47) % width
            y = 20 + ball * 32
            draw.ellipse((x, y, x + 50, y + 50), fill=(255, (ball * 25) % 256, 40), outline="white")
        draw.text((20, height - 40), f"SALE {index:02d}", fill="yellow")
        frames.append(frame)
    return frames


def encoded_inputs() -> list[tuple[str, bytes]]:
    jpeg, png, gif = io.BytesIO(), io.BytesIO(), io.BytesIO()
    photo().save(jpeg, "JPEG", quality=95)
    screenshot().save(png, "PNG", optimize=True)
    frames = animation()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return [
        ("photo 4000x3000 JPEG", jpeg.getvalue()),
        ("screenshot 1170x2532 PNG", png.getvalue()),
        ("animation 480x360x24 GIF", gif.getvalue()),
    ]


# --- the two methods ------------------------------------------------------------------


def with_adapt_image(data: bytes, budget: int) -> Outcome:
    start = time.perf_counter()
    adapted = adapt_image(data, budget_bytes=budget, max_dimension=MAX_DIMENSION)
    ms = (time.perf_counter() - start) * 1000
    return Outcome(ms, adapted.passes, adapted.data, adapted.content_type)


def naive(data: bytes, budget: int) -> Outcome:
    start = time.perf_counter()
    with Image.open(io.BytesIO(data)) as source:
        img = source.convert("RGB")
    img.thumbnail((MAX_DIMENSION, MAX_DIMENSION), Image.Resampling.LANCZOS)
    passes = 0
    while True:
        for quality in NAIVE_QUALITIES:
            out = io.BytesIO()
            img.save(out, "JPEG", quality=quality, optimize=True)
            passes += 1
            if out.tell() <= budget:
                ms = (time.perf_counter() - start) * 1000
                return Outcome(ms, passes, out.getvalue(), "image/jpeg")
        img = img.resize(
            (max(1, img.width // 2), max(1, img.height // 2)), Image.Resampling.LANCZOS
        )


# --- SSIM -----------------------------------------------------------------------------


def gray_thumbnail(data: bytes) -> list[int]:
    with Image.open(io.BytesIO(data)) as img:
        rgba = img.convert("RGBA")
    flat = Image.new("RGBA", rgba.size, "white")
    flat.alpha_composite(rgba)
    small = flat.convert("L").resize((SSIM_SIDE, SSIM_SIDE), Image.Resampling.BOX)
    return list(small.tobytes())


def integral(values: Sequence[int], side: int) -> list[int]:
    """Summed-area table with a zero first row and column: (side+1)^2 entries."""
    table = [0] * ((side + 1) * (side + 1))
    for y in range(side):
        row = list(accumulate(values[y * side : (y + 1) * side]))
        above = (y) * (side + 1)
        here = (y + 1) * (side + 1)
        for x in range(side):
            table[here + x + 1] = table[above + x + 1] + row[x]
    return table


def ssim(first: Sequence[int], second: Sequence[int], side: int = SSIM_SIDE) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    tables = [
        integral(first, side),
        integral(second, side),
        integral([v * v for v in first], side),
        integral([v * v for v in second], side),
        integral([a * b for a, b in zip(first, second, strict=True)], side),
    ]
    n = SSIM_WINDOW * SSIM_WINDOW
    width = side + 1
    scores = []
    for y in range(0, side - SSIM_WINDOW + 1, SSIM_STEP):
        for x in range(0, side - SSIM_WINDOW + 1, SSIM_STEP):
            a, b = y * width + x, y * width + x + SSIM_WINDOW
            c, d = a + SSIM_WINDOW * width, b + SSIM_WINDOW * width
            sx, sy, sxx, syy, sxy = (t[d] - t[b] - t[c] + t[a] for t in tables)
            mx, my = sx / n, sy / n
            vx, vy, cov = sxx / n - mx * mx, syy / n - my * my, sxy / n - mx * my
            top = (2 * mx * my + c1) * (2 * cov + c2)
            scores.append(top / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return sum(scores) / len(scores)


# --- the table ------------------------------------------------------------------------


def short_type(content_type: str) -> str:
    return content_type.removeprefix("image/").upper()


def main() -> None:
    methods: list[tuple[str, Callable[[bytes, int], Outcome]]] = [
        ("adapt_image", with_adapt_image),
        ("naive", naive),
    ]
    print(f"Fitting images into a byte budget (max {MAX_DIMENSION} px)")
    header = f"{'input':26} {'budget':>7} {'method':11} {'ms':>7} {'passes':>6} {'bytes':>8} "
    print(header + f"{'format':6} {'SSIM':>6}")
    adapt_passes: list[int] = []
    scores: dict[str, list[float]] = {"adapt_image": [], "naive": []}
    cases = within = 0
    for name, data in encoded_inputs():
        reference = gray_thumbnail(data)
        for budget in BUDGETS:
            for label, method in methods:
                outcome = method(data, budget)
                cases += 1
                within += len(outcome.data) <= budget
                if label == "adapt_image":
                    adapt_passes.append(outcome.passes)
                score = ssim(reference, gray_thumbnail(outcome.data))
                if "animation" not in name:  # naive sends an animation's first frame only
                    scores[label].append(score)
                print(
                    f"{name:26} {budget // 1024:>5}KB {label:11} {outcome.ms:7.0f} "
                    f"{outcome.passes:6d} {len(outcome.data):8d} "
                    f"{short_type(outcome.content_type):6} {score:6.3f}"
                )
    print("(naive handles stills only: for the animation it sends the first frame as JPEG)")
    average = sum(adapt_passes) / len(adapt_passes)
    print(f"adapt_image average passes: {average:.1f}")
    mean = {label: sum(values) / len(values) for label, values in scores.items()}
    record(
        Figure("image fitting: encoder passes per image (mean)", average, 3, "passes"),
        Figure(
            "image fitting: mean SSIM over the naive ladder's (stills)",
            mean["adapt_image"] / mean["naive"],
            1,
            "x",
            "at least",
        ),
        Figure("image fitting: outputs within budget", 100 * within / cases, 100, "%", "exactly"),
    )


if __name__ == "__main__":
    main()
