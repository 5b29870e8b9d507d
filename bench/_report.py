"""Report helpers shared by the benchmarks: ratios, per-round spreads, results JSON."""

from __future__ import annotations

import json
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
