"""Cold start: import time of each Lambda handler module next to a bare `import boto3`.

Each figure is the median of fresh interpreter runs (python -X importtime is
not used: it slows imports down). Run: .venv/bin/python -m benchmarks.cold_start
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7

PROBE = """
import sys, time
sys.path[:0] = [{paths}]
start = time.perf_counter()
{statement}
print((time.perf_counter() - start) * 1000)
"""


def measure(statement: str, paths: list[str]) -> float:
    code = PROBE.format(paths=", ".join(repr(p) for p in paths), statement=statement)
    env = {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "1", "PATH": "/usr/bin"}
    samples = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def main() -> None:
    common = str(ROOT / "layers" / "common")
    rows = [("import boto3 (baseline)", measure("import boto3", []))]
    for function in sorted(p.name for p in (ROOT / "functions").iterdir() if p.is_dir()):
        path = str(ROOT / "functions" / function)
        rows.append((f"functions/{function}/app.py", measure("import app", [path, common])))
    print(f"Handler import time (cold start), median of {RUNS} fresh interpreters")
    print(f"{'module':32} {'ms':>8}")
    for name, ms in rows:
        print(f"{name:32} {ms:8.1f}")


if __name__ == "__main__":
    main()
