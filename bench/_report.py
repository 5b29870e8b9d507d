"""Report helpers shared by the benchmarks: ratios, per-round spreads, results JSON."""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _processes import REPO_ROOT


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def format_spread(values: Sequence[float | None]) -> str:
    """Per-round ratios as `1.23, -, 1.19` (only to show the spread)."""
    return ", ".join(f"{x:.2f}" if x is not None else "-" for x in values)


def write_results(path: Path, doc: dict[str, Any]) -> None:
    """Write a results document as indented JSON and say where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {path.relative_to(REPO_ROOT)}")


# A drop counts when the whole interval of the median ratio lies below this.
SLOWER_BELOW = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 14  # fixed: the same rounds always give the same interval


def median_ratio_interval(
    ratios: Sequence[float], level: float = 0.95
) -> tuple[float, float, float]:
    """The median of per-round ratios and a percentile-bootstrap `level` interval of it.

    Rounds are resampled with replacement (each round's ratio is one paired observation:
    both servers measured back to back), BOOTSTRAP_RESAMPLES times with a fixed seed. With 5
    rounds the 95 % interval is [min, max] of the ratios (a resample's median falls on the
    lowest ratio with probability 5.8 %); 7 or more rounds narrow it."""
    values = sorted(ratios)
    if not values:
        raise ValueError("no ratios")
    rng = random.Random(BOOTSTRAP_SEED)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(BOOTSTRAP_RESAMPLES)
    )
    tail = (1 - level) / 2
    low = medians[int(tail * BOOTSTRAP_RESAMPLES)]
    high = medians[min(BOOTSTRAP_RESAMPLES - 1, int((1 - tail) * BOOTSTRAP_RESAMPLES))]
    return statistics.median(values), low, high


def slower_verdict(high: float) -> str:
    """'slower' only when the interval's upper bound lies below SLOWER_BELOW."""
    return "SLOWER" if high < SLOWER_BELOW else "not slower"


def format_comparison(
    label: str, unit: str, current: float, base: float, ratios: Sequence[float]
) -> str:
    """One line: both medians, the median ratio, its 95 % interval and the verdict."""
    median, low, high = median_ratio_interval(ratios)
    return (
        f"  {label:<9} {unit:<12} baseline {base:9.1f}  current {current:9.1f}"
        f"  ratio {median:.2f}x  95% [{low:.2f}, {high:.2f}]  {slower_verdict(high)}"
        f"  (per round {format_spread(ratios)})"
    )
