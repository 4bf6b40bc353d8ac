"""Hostile inputs and the largest legal ones: time and peak memory of the code that
handles each, against the handling function's Timeout and MemorySize in template.yaml.

Each case runs in a fresh Python process, so its peak RSS is its own (Pillow's pixel
buffers are outside tracemalloc's view). "margin" is the function's limit divided by
the figure: above 1 means within it.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 600 * 1024  # Limits().image_budget_bytes


def _image_case(make: str) -> Callable[[Path | None], str]:
    def run(stored: Path | None) -> str:
        from mmsapi.media.images import CorruptImage, adapt_image
        from tests import hostile_media, media

        if stored is None:  # making the input: its cost is not the handler's
            return eval(make, {"h": hostile_media, "m": media})  # type: ignore[no-any-return]
        data = stored.read_bytes()
        start = time.perf_counter()
        try:
            fitted = adapt_image(data, budget_bytes=BUDGET, max_dimension=1600)
            outcome = f"fitted {fitted.width}x{fitted.height}x{fitted.frames}"
        except CorruptImage:
            outcome = "E341"
        return f"{len(data)}|{time.perf_counter() - start}|{outcome}"

    return run


def _merge_case(value_chars: int, tags: int, api: bool) -> Callable[[Path | None], str]:
    def run(stored: Path | None) -> str:
        from mmsapi import records
        from mmsapi.errors import ApiError
        from mmsapi.models import Send, Template, TemplateSlide, TemplateStatus
        from mmsapi.services.personalize import check_sizes, subject_for, texts_for

        template = Template(
            mms_id=1,
            account_id="a",
            name="n",
            status=TemplateStatus.READY,
            slides=[TemplateSlide(text="{$a} " * 8) for _ in range(8)],
        )
        send = Send(
            send_id=1,
            account_id="a",
            mms_id=1,
            to="14044790000",
            sender="28444",
            requested_from="28444",
            service_id="1",
            custom_subject="{$a}" * tags,
            data={"a": "x" * value_chars},
        )
        size = len(records.to_json(send))
        start = time.perf_counter()
        outcome = "accepted"
        if api:
            try:
                check_sizes(template, send, 5000)
            except ApiError as error:
                outcome = error.code
        else:  # delivery (and the hosted page): personalisation of what was stored
            subject_for(template, send)
            texts_for(template, send)
            outcome = "personalised"
        return f"{size}|{time.perf_counter() - start}|{outcome}"

    return run


# name -> (function in template.yaml, what handles it, the case)
CASES: dict[str, tuple[str, str, Callable[[Path | None], str]]] = {
    "scan-bomb JPEG (5,000 scans, 2048²)": (
        "ApiFunction",
        "save fitting",
        _image_case("h.scan_bomb_jpeg(5000)"),
    ),
    "GIF frame bomb (2,000 x 1000²)": (
        "ApiFunction",
        "save fitting",
        _image_case("h.frame_bomb_gif(2000, 1000)"),
    ),
    "GIF of the issue (1,000 x 316², 1 MB)": (
        "ApiFunction",
        "save fitting",
        _image_case("h.frame_bomb_gif(1000, 316, 2000)"),
    ),
    "60 MP PNG (RGBA, 250 KB)": ("ApiFunction", "save fitting", _image_case("h.huge_png()")),
    "legal: 48 MP JPEG photo (8000x6000)": (
        "ApiFunction",
        "save fitting",
        _image_case("m.photo_jpeg(8000, 6000)"),
    ),
    "legal: 40 MP RGBA PNG": (
        "ApiFunction",
        "save fitting",
        _image_case("h.huge_png(8000, 5000)"),
    ),
    "legal: GIF 500 x 282² (39.8 MP)": (
        "ApiFunction",
        "save fitting",
        _image_case("h.frame_bomb_gif(500, 282, 5000)"),
    ),
    "legal: JPEG 100 scans of 3000²": (
        "ApiFunction",
        "save fitting",
        _image_case("h.scan_bomb_jpeg(94, 3000)"),
    ),
    "merge-tag bomb at the API (2,000 tags, 100 KB)": (
        "ApiFunction",
        "send acceptance",
        _merge_case(100_000, 2000, api=True),
    ),
    "merge-tag bomb stored earlier, delivered": (
        "DeliverFunction",
        "delivery personalisation",
        _merge_case(100_000, 2000, api=False),
    ),
    "legal: 8 slides x 8 tags of 600 chars": (
        "DeliverFunction",
        "delivery personalisation",
        _merge_case(600, 0, api=False),
    ),
}


def _function_limits() -> dict[str, tuple[float, float]]:
    """(Timeout s, MemorySize MB) of each function, Globals applied."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    doc = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    defaults = doc["Globals"]["Function"]
    limits = {}
    for name, resource_ in doc["Resources"].items():
        if resource_.get("Type") == "AWS::Serverless::Function":
            props = resource_["Properties"]
            limits[name] = (
                float(props.get("Timeout", defaults["Timeout"])),
                float(props.get("MemorySize", defaults["MemorySize"])),
            )
    return limits


def _child(name: str, stored: Path) -> None:
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _, _, case = CASES[name]
    figures = case(stored)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{figures}|{baseline / 1024}|{peak / 1024}")


def _make(name: str, stored: Path) -> None:
    _, _, case = CASES[name]
    made = case(None)
    if isinstance(made, bytes):
        stored.write_bytes(made)


def _run(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.hostile_inputs", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] in ("--child", "--make"):
        (_child if sys.argv[1] == "--child" else _make)(sys.argv[2], Path(sys.argv[3]))
        return
    limits = _function_limits()
    print(
        f"{'input':46} {'handled by':24} {'bytes':>9} {'outcome':>18} {'s':>6} {'peak MB':>7}"
        f" {'function':15} {'timeout':>7} {'memory':>6} {'t-margin':>8} {'m-margin':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, (function, path, _) in CASES.items():
            stored = Path(tmp) / "input"
            _run("--make", name, str(stored))
            out = _run("--child", name, str(stored))
            size, seconds, outcome, _, peak = out.rsplit("\n", 1)[-1].split("|")
            timeout, memory = limits[function]
            print(
                f"{name:46} {path:24} {int(size):>9} {outcome:>18} {float(seconds):>6.2f}"
                f" {float(peak):>7.0f} {function:15} {timeout:>7.0f} {memory:>6.0f}"
                f" {timeout / max(float(seconds), 0.001):>8.0f} {memory / float(peak):>8.1f}"
            )


if __name__ == "__main__":
    main()
