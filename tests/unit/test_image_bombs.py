"""Small images that are costly to decode are refused from their headers (E341).

CorruptImage is answered E341 by saveMMS (tests/integration/test_save.py). Each
hostile file is refused before a single pixel is decoded: the tests make
Pillow's decoding step fail loudly, so a check that decodes is caught whatever
the machine's speed. Their cost when they were decoded is in
benchmarks/hostile_inputs.py.
"""

from __future__ import annotations

import io
import tracemalloc

import pytest
from PIL import Image, ImageFile

from mmsapi.media import images
from mmsapi.media.images import CorruptImage, adapt_image, jpeg_scans
from tests.hostile_media import claimed_size_png, frame_bomb_gif, huge_png, scan_bomb_jpeg
from tests.media import photo_jpeg

BUDGET = 600 * 1024
# Python-side allocations allowed while refusing: a few copies of a file of a few MB.
REFUSAL_PEAK_BYTES = 16 * 1024 * 1024


@pytest.fixture
def no_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any decoding of pixel data fails the test."""

    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError(f"pixels of a {self.format} image were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def _refused(data: bytes) -> tuple[str, int]:
    tracemalloc.start()
    try:
        with pytest.raises(CorruptImage) as refused:
            adapt_image(data, budget_bytes=BUDGET)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return str(refused.value), peak


@pytest.mark.usefixtures("no_pixel_decoding")
def test_a_progressive_jpeg_of_thousands_of_empty_scans_is_refused_unread() -> None:
    # Given a 100 KB progressive JPEG of 2048x2048 with 5,000 scans (~10 s to decode)
    bomb = scan_bomb_jpeg(scans=5000)
    assert len(bomb) < 200_000
    assert jpeg_scans(bomb) > 5000

    # When it is adapted, Then it is refused from its markers, without decoding
    message, peak = _refused(bomb)
    assert "scan limit" in message
    assert peak < REFUSAL_PEAK_BYTES


@pytest.mark.usefixtures("no_pixel_decoding")
def test_a_large_jpeg_with_a_few_hundred_scans_is_refused_by_its_scan_pixels() -> None:
    # 100 scans or fewer, but each walks 25 MP: scans × pixels is the cost
    bomb = scan_bomb_jpeg(scans=90, side=5000)
    assert jpeg_scans(bomb) <= images.MAX_JPEG_SCANS

    message, _ = _refused(bomb)
    assert "scan limit" in message


@pytest.mark.usefixtures("no_pixel_decoding")
def test_an_animated_gif_of_many_large_frames_is_refused_unread() -> None:
    # Given 2,000 frames of 1000x1000 (2 gigapixels) in a few MB
    bomb = frame_bomb_gif(frames=2000, side=1000)

    message, peak = _refused(bomb)
    assert "animation limit" in message
    assert peak < 4 * len(bomb) + REFUSAL_PEAK_BYTES


@pytest.mark.usefixtures("no_pixel_decoding")
def test_a_1_mb_gif_of_100_megapixels_in_1000_frames_is_refused_unread() -> None:
    # Within the old limits (1,000 frames, 100 MP): 7 s and 660 MB to fit before
    bomb = frame_bomb_gif(frames=1000, side=316, noise_pixels=2000)
    assert len(bomb) < 2 * 1024 * 1024

    message, _ = _refused(bomb)
    assert "1000 frames of 316x316" in message


@pytest.mark.usefixtures("no_pixel_decoding")
def test_a_60_megapixel_png_of_250_kb_is_refused_unread() -> None:
    bomb = huge_png(10_000, 6_000)
    assert len(bomb) < 300_000

    message, peak = _refused(bomb)
    assert "decoding limit" in message
    assert peak < REFUSAL_PEAK_BYTES


@pytest.mark.usefixtures("no_pixel_decoding")
def test_a_png_header_claiming_81_megapixels_is_refused_unread() -> None:
    message, _ = _refused(claimed_size_png(9_000, 9_000))
    assert "pixel limit" in message


def test_a_48_megapixel_photo_is_decoded_at_a_reduced_scale_and_fitted() -> None:
    # The largest legal photo: 8000x6000 decodes at 1/2 scale (12 MP) through draft mode
    photo = photo_jpeg(8000, 6000)

    adapted = adapt_image(photo, budget_bytes=BUDGET, max_dimension=1600)

    assert (adapted.width, adapted.height) == (1600, 1200)
    assert len(adapted.data) <= BUDGET


def test_an_ordinary_progressive_jpeg_is_within_the_scan_limits() -> None:
    out = io.BytesIO()
    Image.open(io.BytesIO(photo_jpeg(1200, 900))).save(out, "JPEG", progressive=True)
    data = out.getvalue()
    assert 2 <= jpeg_scans(data) <= 12

    adapted = adapt_image(data, budget_bytes=BUDGET)

    assert adapted.width == 1200


def test_a_legal_animation_just_under_the_limits_is_fitted() -> None:
    # 500 frames of 282x282 (39.8 MP), too big for the budget: decoded and fitted
    gif = frame_bomb_gif(frames=500, side=282, noise_pixels=5000)
    assert len(gif) > BUDGET

    adapted = adapt_image(gif, budget_bytes=BUDGET)

    assert len(adapted.data) <= BUDGET


def test_a_baseline_jpeg_has_one_scan_per_picture_and_ignores_what_follows_its_end() -> None:
    single = photo_jpeg(64, 48)
    assert jpeg_scans(single) == 1
    # An MPO-style second picture after the first EOI is not counted.
    assert jpeg_scans(single + single) == 1
    assert jpeg_scans(b"\xff\xd8\xff\xd9") == 0
