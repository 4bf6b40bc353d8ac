"""The figures the issues set goals for, each printed beside its goal.

A benchmark calls `record(Figure(...))`: the line is printed at once, and when
MMS_BENCH_FIGURES names a file (benchmarks/run.py, i.e. `make bench`) it is also
appended there, so that one table at the end shows every figure of the run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Final, Literal

FIGURES_FILE: Final = "MMS_BENCH_FIGURES"

Bound = Literal["at most", "at least", "exactly"]


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    goal: float
    unit: str = ""  # "x" (a ratio), "calls", "USD", "passes", ...
    bound: Bound = "at most"

    @property
    def met(self) -> bool:
        if self.bound == "at most":
            return self.value <= self.goal
        if self.bound == "at least":
            return self.value >= self.goal
        return abs(self.value - self.goal) < 1e-9

    @property
    def ratio(self) -> float:
        """The figure over its goal (1.0 is exactly on it)."""
        return self.value / self.goal if self.goal else float("inf")

    def line(self) -> str:
        mark = "met" if self.met else "MISSED"
        goal = f"{self.bound} {_number(self.goal)}{_unit(self.unit)}"
        return (
            f"{self.name:58} {_number(self.value):>10}{_unit(self.unit):6} "
            f"{goal:>22} {self.ratio:7.2f} {mark}"
        )


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 0.01 else f"{value:.2f}"


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


HEADER: Final = f"{'figure':58} {'value':>16} {'goal':>22} {'ratio':>7}"


def record(*figures: Figure) -> None:
    """Print each figure beside its goal; keep it for the run's table (see above)."""
    for figure in figures:
        print("goal:", figure.line())
    path = os.environ.get(FIGURES_FILE)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            for figure in figures:
                out.write(json.dumps(asdict(figure)) + "\n")


def read(path: str) -> list[Figure]:
    with open(path, encoding="utf-8") as lines:
        return [Figure(**json.loads(line)) for line in lines if line.strip()]
