"""Peak memory of each function's heaviest real workload, and the MemorySize it needs.

Each workload runs in a child process of its own (a fresh interpreter, like a new
Lambda instance): it imports the function's handler (functions/<dir>/app.py), then
does the work, and reports its peak RSS (VmHWM; getrusage's ru_maxrss would carry
this process's over the exec) and, sampled every 20 ms, that of its child processes
(ffmpeg). The emulated AWS is a moto server in this process and the media come
from a local HTTP server here, so neither is counted.

- ApiFunction: saveMMS through the handler: five 50 MiB videos and a 39 MiB audio
  file (streamed to S3), plus an 8000x6000 JPEG photo (held, decoded and fitted).
- TranscodeFunction: the handler encoding 30 s of 1280x720 H.264 at 6 Mbit/s.
- DeliverFunction: adapting that video and the photo for a feature phone (300 KB:
  the video is re-encoded from its original at send time).
- PostbackFunction: the handler delivering an N003 postback to a local URL.
- ViewFunction, ReportFunction, FinalizeFunction, SweeperFunction, OutboxFunction:
  the handler on the real-shape events in events/ (their work is a few small
  DynamoDB/S3/EventBridge calls: the imports are most of their memory).

Lambda bills memory for the whole sandbox: the Python process and ffmpeg while it
runs. "need" is the peak of their sum, sampled. The recommended
MemorySize is that plus half again, and at least the function's CPU floor: Lambda
gives CPU in proportion to memory (1769 MB = one vCPU), and the media functions do
CPU-bound work against deadlines (Pillow fitting inside saveMMS's 26 s budget;
ffmpeg at send time), TranscodeFunction gets two vCPUs (3538 MB: ffmpeg uses both,
so the same GB-seconds buy half the wait), and the others need enough CPU for a
quick cold start (512 MB: the imports are CPU-bound).

Run: .venv/bin/python -m benchmarks.memory
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"
HEADROOM = 1.5
ONE_VCPU_MB = 1769
# CPU floors (MB): see the module docstring.
CPU_FLOOR = {
    "ApiFunction": ONE_VCPU_MB,
    "TranscodeFunction": 2 * ONE_VCPU_MB,  # ffmpeg uses both vCPUs: same GB-s, half the wait
    "DeliverFunction": ONE_VCPU_MB,
}
LIGHT_FLOOR = 512


# ---------------------------------------------------------------- the child


class _Context:
    """The Lambda context attributes the handlers read."""

    def __init__(self, name: str, timeout: float) -> None:
        self.function_name = name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.memory_limit_in_mb = 10240
        self.aws_request_id = "bench"
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _handler_module(directory: str) -> ModuleType:
    path = ROOT / "functions" / directory / "app.py"
    spec = importlib.util.spec_from_file_location(f"functions_{directory}_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(result: Any) -> str:
    text = json.dumps(result, default=str)
    for marker in ("error-code>", "<status>", '"ok": ', '"statusCode": ', '"status": '):
        at = text.find(marker)
        if at >= 0:
            return text[at : at + len(marker) + 12].replace("\\", "")
    return text[:60]


def _deliver(module: ModuleType, spec: dict[str, Any]) -> str:
    from mmsapi import records
    from mmsapi.carrier.profiles import PROFILES
    from mmsapi.models import Template
    from mmsapi.services.adapt import adapt_message
    from mmsapi.store.media import MediaStore

    template = records.load(Template, spec["template"])
    media = MediaStore()
    message = adapt_message(
        template,
        PROFILES["feature_phone"],
        load=media.get,
        subject="Spring sale",
        slide_texts=[s.text for s in template.slides],
        link_for=lambda _m: "https://m.example.com/v/1",
    )
    del module
    return f"{len(message.parts)} parts, {message.air_bytes()} bytes on air"


def _status_kb(pid: int | str, field: str) -> int:
    """A /proc/<pid>/status field in KiB (VmHWM: peak RSS of the process's own memory,
    started afresh at exec, unlike getrusage's ru_maxrss which keeps the forking
    parent's); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[str]:
    found: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += (task / "children").read_text().split()
        except OSError:
            continue
    return found


class _Sampler(threading.Thread):
    """Samples this process and its children (ffmpeg) every 20 ms: the peak of their
    sum (what Lambda counts) and the children's own peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.pid = os.getpid()
        self.total_kb = 0
        self.children_kb = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            kids = _children(self.pid)
            total = _status_kb(self.pid, "VmRSS") + sum(_status_kb(k, "VmRSS") for k in kids)
            self.total_kb = max(self.total_kb, total)
            for kid in kids:
                self.children_kb = max(self.children_kb, _status_kb(kid, "VmHWM"))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def child(spec_path: str) -> None:
    spec: dict[str, Any] = json.loads(Path(spec_path).read_text())
    begun = time.monotonic()
    module = _handler_module(spec["directory"])
    import_seconds = time.monotonic() - begun
    imported = _status_kb("self", "VmHWM")
    sampler = _Sampler()
    sampler.start()
    started = time.monotonic()
    if spec["directory"] == "deliver":
        outcome = _deliver(module, spec)
        result: Any = None
    else:
        context = _Context(spec["function"], spec.get("timeout", 29.0))
        result = module.handler(spec["event"], context)
        outcome = _outcome(result)
    seconds = time.monotonic() - started
    sampler.stop()
    peak = _status_kb("self", "VmHWM")
    report = {
        "imported_kb": imported,
        "import_seconds": import_seconds,
        "self_kb": peak,
        "children_kb": sampler.children_kb,
        "total_kb": max(peak, sampler.total_kb),
        "seconds": seconds,
        "outcome": outcome,
        "result": result,
    }
    print("REPORT " + json.dumps(report), flush=True)


# ---------------------------------------------------------------- the parent


def _fake_file(head: bytes, size: int) -> bytes:
    """`size` bytes starting with a real header, then incompressible-looking bytes."""
    import hashlib

    block = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(4096))
    body = (block * (size // len(block) + 1))[: size - len(head)]
    return head + body


class _Bench:
    def __init__(self, workdir: Path) -> None:
        import os

        from moto.server import ThreadedMotoServer
        from pytest_httpserver import HTTPServer

        from benchmarks.common import quiet_environment
        from local.stack import provision
        from mmsapi.settings import get_settings

        quiet_environment()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request
        self.workdir = workdir
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint
        os.environ["AWS_REGION"] = "us-east-1"
        self.stack = provision("mmsapi-bench")
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.server.start()
        get_settings.cache_clear()

    def close(self) -> None:
        self.server.clear()
        self.server.stop()
        self.moto.stop()

    def environment(self, function: str) -> dict[str, str]:
        import os

        base = {k: v for k, v in os.environ.items() if not k.startswith("MMS_")}
        return {
            **base,
            **self.stack.function_environment(function),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "MMS_ALLOW_LOOPBACK_MEDIA": "true",
            "MMS_FFMPEG_DIR": "",  # /opt/bin is the ffmpeg layer; here the package's binaries
        }

    def run(self, function: str, directory: str, **spec: Any) -> dict[str, Any]:
        import subprocess

        path = self.workdir / f"{function}.json"
        path.write_text(json.dumps({"function": function, "directory": directory, **spec}))
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", "--child", str(path)],
            env=self.environment(function),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            cwd=ROOT,
        )
        line = next((x for x in done.stdout.splitlines() if x.startswith("REPORT ")), None)
        if line is None:
            raise RuntimeError(f"{function} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        report: dict[str, Any] = json.loads(line.removeprefix("REPORT "))
        print(f"{function}: {report['outcome']}", file=sys.stderr, flush=True)
        return report

    # ------------------------------------------------------------ workloads

    def account(self) -> str:
        from mmsapi.services.accounts import create_account
        from mmsapi.settings import scoped_settings, settings_from
        from mmsapi.store.accounts import AccountStore

        with scoped_settings(settings_from(self.stack.function_environment("ApiFunction"))):
            account, _ = create_account(
                AccountStore(), "bench", api_key=KEY, postback_url=self.url("/postback")
            )
        return account.account_id

    def url(self, path: str) -> str:
        return str(self.server.url_for(path))

    def serve(self, path: str, data: bytes, content_type: str) -> str:
        self.server.expect_request(path).respond_with_data(data, content_type=content_type)
        return self.url(path)

    def save_event(self, photo: bytes) -> dict[str, Any]:
        video = _fake_file(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", 50 * MIB)
        audio = _fake_file(b"ID3\x04\x00\x00\x00\x00\x00\x00", 39 * MIB)
        slides = [
            f"<slide><video><url>{self.serve(f'/v{n}.mp4', video, 'video/mp4')}</url></video>"
            "</slide>"
            for n in range(5)
        ]
        slides.append(
            f"<slide><audio><url>{self.serve('/a.mp3', audio, 'audio/mpeg')}</url></audio></slide>"
        )
        slides.append(
            f"<slide><image><url>{self.serve('/p.jpg', photo, 'image/jpeg')}</url></image>"
            "<message-text>Hello</message-text></slide>"
        )
        body = (
            f"<request><action>saveMMS</action><api-key>{KEY}</api-key><name>big</name>"
            f"<message-subject>s</message-subject>{''.join(slides)}</request>"
        )
        event: dict[str, Any] = json.loads((ROOT / "events/api/save-text-current.json").read_text())
        event["body"] = body
        return event

    def video(self) -> Path:
        from tests.media_av import lavfi_media

        return lavfi_media(
            self.workdir / "phone_720p_30s.mp4",
            ("-c:v", "libx264", "-preset", "ultrafast", "-b:v", "6M", "-pix_fmt", "yuv420p"),
            ("-c:a", "aac", "-b:a", "128k"),
            "mp4",
            seconds=30.0,
            size="1280x720",
            rate=30,
        )

    def saved_template(
        self, account_id: str, photo: bytes, video: Path, renditions: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The template saveMMS and the encoding pipeline leave, for the deliver run."""
        from mmsapi import records
        from mmsapi.media.images import adapt_image
        from mmsapi.media.types import MediaKind
        from mmsapi.models import Rendition, StoredMedia, Template, TemplateSlide, TemplateStatus
        from mmsapi.settings import scoped_settings, settings_from
        from mmsapi.store.media import MediaStore, template_prefix

        prefix = template_prefix(account_id, 2)
        with scoped_settings(settings_from(self.stack.function_environment("ApiFunction"))):
            media = MediaStore()
            adapted = adapt_image(photo, budget_bytes=600 * 1024, max_dimension=1600)
            media.put(prefix + "slide-1/image/original.jpg", photo, "image/jpeg")
            media.put(prefix + "slide-1/image/adapted.jpg", adapted.data, adapted.content_type)
            media.upload(video, prefix + "slide-2/video/original.mp4", "video/mp4")
        image = StoredMedia(
            kind=MediaKind.IMAGE,
            source_url="https://example.com/p.jpg",
            content_type="image/jpeg",
            original_key=prefix + "slide-1/image/original.jpg",
            original_bytes=len(photo),
            rendition_key=prefix + "slide-1/image/adapted.jpg",
            rendition_type=adapted.content_type,
            rendition_bytes=len(adapted.data),
            width=adapted.width,
            height=adapted.height,
        )
        clip = StoredMedia(
            kind=MediaKind.VIDEO,
            source_url="https://example.com/v.mp4",
            content_type="video/mp4",
            original_key=prefix + "slide-2/video/original.mp4",
            original_bytes=video.stat().st_size,
            duration_seconds=30,
            renditions=[records.load(Rendition, r) for r in renditions],
        )
        best = clip.renditions[0]
        clip.rendition_key, clip.rendition_type = best.key, best.content_type
        clip.rendition_bytes = best.bytes
        template = Template(
            mms_id=2,
            account_id=account_id,
            name="b",
            status=TemplateStatus.READY,
            slides=[
                TemplateSlide(text="Spring sale", duration=5, media=[image]),
                TemplateSlide(text=None, duration=30, media=[clip]),
            ],
        )
        return records.dump(template)


def _event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return event


def _mb(kb: int) -> float:
    return kb / 1024


def main() -> None:
    import tempfile

    from mmsapi.settings import scoped_settings, settings_from
    from mmsapi.store.media import MediaStore
    from tests.media import photo_jpeg

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        bench = _Bench(Path(tmp))
        try:
            account_id = bench.account()
            photo = photo_jpeg(8000, 6000, quality=95)
            video = bench.video()
            rows: list[tuple[str, str, dict[str, Any]]] = []

            save = bench.save_event(photo)
            rows.append(("ApiFunction", "saveMMS: 5x50 MiB video, 39 MiB audio, photo", {}))
            rows[-1][2].update(bench.run("ApiFunction", "api", event=save))

            transcode_key = f"templates/{account_id}/1/slide-1/video/original.mp4"
            with scoped_settings(settings_from(bench.stack.function_environment("ApiFunction"))):
                MediaStore().upload(video, transcode_key, "video/mp4")
            item = {
                "slide": 1,
                "kind": "video",
                "content_type": "video/mp4",
                "original_key": transcode_key,
                "budget_bytes": 600 * 1024,
                "max_seconds": 30,
            }
            transcode_event = {"account_id": account_id, "mms_id": 1, "item": item}
            rows.append(("TranscodeFunction", "encode 30 s 1280x720 6 Mbit/s H.264", {}))
            rows[-1][2].update(bench.run("TranscodeFunction", "transcode", event=transcode_event))

            renditions: list[dict[str, Any]] = rows[-1][2]["result"]["renditions"]
            template = bench.saved_template(account_id, photo, video, renditions)
            rows.append(("DeliverFunction", "adapt photo + 30 s video for a feature phone", {}))
            rows[-1][2].update(bench.run("DeliverFunction", "deliver", template=template))

            postback = _event("postback/n003.json")
            body = json.loads(postback["Records"][0]["body"])
            body["detail"]["account_id"] = account_id
            postback["Records"][0]["body"] = json.dumps(body)
            bench.server.expect_request("/postback").respond_with_data("ok")
            rows.append(("PostbackFunction", "N003 postback to a local URL", {}))
            rows[-1][2].update(bench.run("PostbackFunction", "postback", event=postback))

            light: list[tuple[str, str, str, dict[str, Any]]] = [
                (f, d, f"events/{n}", _event(n))
                for f, d, n in (
                    ("ViewFunction", "view", "view/unknown-link.json"),
                    ("ReportFunction", "report", "report/mm7-unknown-message.json"),
                    ("FinalizeFunction", "finalize", "finalize/unknown-template.json"),
                    ("SweeperFunction", "sweeper", "sweeper/schedule.json"),
                )
                if (ROOT / "events" / n).exists()
            ]
            light.append(("OutboxFunction", "outbox", "an empty stream batch", {"Records": []}))
            present = set(bench.stack.function_ids())
            for function, directory, label, event in light:
                if function in present:
                    rows.append((function, label, bench.run(function, directory, event=event)))
        finally:
            bench.close()
    _print(rows)


def _print(rows: list[tuple[str, str, dict[str, Any]]]) -> None:
    print("Peak memory per function, MiB: a fresh interpreter per workload (VmHWM after the")
    print("handler's imports, and after the work), ffmpeg's own peak, and the peak of their")
    print("sum sampled every 20 ms (need: what Lambda counts).")
    print(
        f"{'function':18} {'imports':>8} {'peak':>7} {'ffmpeg':>7} {'need':>7} "
        f"{'MemorySize':>10} {'import s':>8} {'work s':>6}  workload -> outcome"
    )
    for function, workload, r in rows:
        imported, peak, ffmpeg = _mb(r["imported_kb"]), _mb(r["self_kb"]), _mb(r["children_kb"])
        need = _mb(r["total_kb"])
        floor = CPU_FLOOR.get(function, LIGHT_FLOOR)
        recommended = max(floor, math.ceil(need * HEADROOM))
        print(
            f"{function:18} {imported:8.0f} {peak:7.0f} {ffmpeg:7.0f} {need:7.0f} "
            f"{recommended:10d} {r['import_seconds']:8.2f} {r['seconds']:6.1f}  "
            f"{workload} -> {r['outcome']}"
        )
    print(
        f"MB (MiB of RSS). MemorySize = max(CPU floor, need x {HEADROOM}); "
        f"CPU floor {ONE_VCPU_MB} (one vCPU) for media work ({2 * ONE_VCPU_MB} for "
        f"TranscodeFunction), {LIGHT_FLOOR} otherwise (cold start: the imports' CPU time)."
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
