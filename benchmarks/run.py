"""`make bench`: every benchmark, each in a fresh interpreter, then one table of the
figures that have goals (benchmarks/goals.py), each beside its goal.

Run: .venv/bin/python -m benchmarks.run [name ...]   (default: all of BENCHMARKS)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Final

from benchmarks.goals import FIGURES_FILE, HEADER, read

BENCHMARKS: Final = (
    "cold_start",
    "send_latency",
    "save_latency",
    "limits_cost",
    "cost",
    "image_fit",
    "video_encode",
    "adaptation",
    "memory",
    "hostile_inputs",
)


def main(names: list[str]) -> int:
    with tempfile.NamedTemporaryFile(prefix="bench-figures-", suffix=".jsonl") as figures:
        env = {**os.environ, FIGURES_FILE: figures.name}
        failed = []
        for name in names or BENCHMARKS:
            print(f"== {name}", flush=True)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], env=env)
            print(f"== {name}: {time.perf_counter() - started:.0f} s", flush=True)
            if done.returncode != 0:
                failed.append(name)
        table = read(figures.name)
    print(f"\nFigures and goals ({len(table)}; {sum(f.met for f in table)} met)")
    print(HEADER)
    for figure in table:
        print(figure.line())
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
