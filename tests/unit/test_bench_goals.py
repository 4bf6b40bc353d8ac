"""The table `make bench` prints: each figure beside its goal, met or missed."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.goals import FIGURES_FILE, Figure, read, record


@pytest.mark.parametrize(
    ("figure", "met"),
    [
        (Figure("calls per send", 1.9, 2, "calls"), True),
        (Figure("calls per send", 2.01, 2, "calls"), False),
        (Figure("encoding speed", 9.9, 10, "x", "at least"), False),
        (Figure("encoding speed", 12, 10, "x", "at least"), True),
        (Figure("adaptations per pair", 1, 1, "", "exactly"), True),
        (Figure("adaptations per pair", 1.1, 1, "", "exactly"), False),
    ],
)
def test_a_figure_is_met_only_on_the_right_side_of_its_goal(figure: Figure, met: bool) -> None:
    assert figure.met is met
    assert figure.line().endswith("met" if met else "MISSED")


def test_recorded_figures_come_back_for_the_run_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "figures.jsonl"
    monkeypatch.setenv(FIGURES_FILE, str(path))
    first = Figure("cold start, api (x import boto3)", 1.21, 1.3, "x")
    second = Figure("cost per 1,000 MMS", 0.061, 0.05, "USD")
    record(first)
    record(second)
    assert read(str(path)) == [first, second]
    assert first.ratio == pytest.approx(1.21 / 1.3)
    printed = capsys.readouterr().out
    assert "cold start, api" in printed
    assert "MISSED" in printed
