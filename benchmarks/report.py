"""What a benchmark hands back and how it is printed: percentiles, figures (Signoff's value, the
MLflow baseline of the same run, their ratio, the goal) and the table."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0–100) of `values`."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def describe_ms(label: str, seconds: Sequence[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"  {label:<56} p50 {percentile(ms, 50):7.1f} ms  p95 {percentile(ms, 95):7.1f} ms  "
        f"mean {statistics.fmean(ms):7.1f} ms  (n={len(ms)})"
    )


@dataclass(frozen=True)
class Goal:
    """`ratio <= 2.0`, `ratio >= 0.5`, `value <= 400`; `None` threshold: report only."""

    on: str  # "ratio" or "value"
    op: str  # "<=" or ">="
    threshold: float | None

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        measured = ratio if self.on == "ratio" else value
        if self.threshold is None or measured is None:
            return None
        return measured <= self.threshold if self.op == "<=" else measured >= self.threshold

    def __str__(self) -> str:
        if self.threshold is None:
            return "report"
        return f"{self.on} {self.op} {self.threshold:g}"


REPORT_ONLY = Goal("value", "<=", None)


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    goal: Goal
    baseline: float | None = None
    """MLflow's own figure from the same run (None where there is none)."""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return self.goal.met(self.value, self.ratio)


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    shown = (
        f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    )
    return f"{shown} {unit}".strip()


def table(figures: Iterable[Figure]) -> str:
    rows = [("figure", "Signoff", "MLflow", "ratio", "goal", "met")]
    notes = []
    for figure in figures:
        verdict = {True: "yes", False: "NO", None: "–"}[figure.met]
        rows.append(
            (
                figure.name,
                _num(figure.value, figure.unit),
                _num(figure.baseline, figure.unit),
                _num(figure.ratio) + ("×" if figure.ratio is not None else ""),
                str(figure.goal),
                verdict,
            )
        )
        if figure.note:
            notes.append(f"  {figure.name}: {figure.note}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    lines = [line(rows[0]), "  ".join("-" * width for width in widths)]
    lines += [line(row) for row in rows[1:]]
    return "\n".join(lines + ([""] + notes if notes else []))


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    print(f"\n{title}\n")
    print(table(figures), flush=True)
