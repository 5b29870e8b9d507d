"""DICOM benchmark report: the table, the medians, the ratios and the results JSON."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from _baseline import BASELINE_NAME
from _dicom_base import (
    DICOMITE_NAME,
    HTTPS_NAME,
    KINDS,
    PEER_NAME,
    REFERENCE_NAME,
    TARGETS,
    UNITS,
    Measurement,
    ServerResult,
)
from _report import (
    SLOWER_BELOW,
    format_comparison,
    format_spread,
    median_ratio_interval,
    slower_verdict,
    write_results,
)


def baseline_comparison(results: dict[str, ServerResult], rounds: int) -> dict[str, Any]:
    """Per kind: both medians, the median of the per-round ratios current/baseline, its 95 %
    bootstrap interval and the verdict; empty without a baseline."""
    current, base = results.get(DICOMITE_NAME), results.get(BASELINE_NAME)
    out: dict[str, Any] = {}
    if current is None or base is None:
        return out
    for kind in KINDS:
        paired = round_ratios(results, kind, rounds, DICOMITE_NAME, BASELINE_NAME)
        ratios = [r for r in paired if r is not None]
        if not ratios:
            continue
        median, low, high = median_ratio_interval(ratios)
        out[kind] = {
            "unit": UNITS[kind],
            "baseline_median": base.median(kind),
            "current_median": current.median(kind),
            "round_ratios": paired,
            "median_ratio": median,
            "interval_95": [low, high],
            "verdict": slower_verdict(high),
        }
    return out


def print_baseline_comparison(results: dict[str, ServerResult], rounds: int) -> None:
    current, base = results.get(DICOMITE_NAME), results.get(BASELINE_NAME)
    if current is None or base is None:
        return
    print(
        f"\ncurrent/baseline ({base.config}), {rounds} paired round(s): median of the per-round"
        " ratios, 95 % percentile-bootstrap interval over rounds (10,000 resamples, fixed"
        f" seed); SLOWER only when the interval lies below {SLOWER_BELOW}:"
    )
    for kind in KINDS:
        ratios = [
            r
            for r in round_ratios(results, kind, rounds, DICOMITE_NAME, BASELINE_NAME)
            if r is not None
        ]
        c, b = current.median(kind), base.median(kind)
        if ratios and c is not None and b is not None:
            print(format_comparison(kind, UNITS[kind], c, b, ratios))


def ratios(
    results: dict[str, ServerResult],
    numerator: str = DICOMITE_NAME,
    denominator: str = PEER_NAME,
) -> dict[str, float | None]:
    """Per kind: the numerator's median over the denominator's (None where one is missing)."""
    dicomite, peer = results.get(numerator), results.get(denominator)
    out: dict[str, float | None] = {}
    for kind in KINDS:
        d = dicomite.median(kind) if dicomite else None
        p = peer.median(kind) if peer else None
        out[kind] = d / p if d is not None and p else None
    return out


def round_ratios(
    results: dict[str, ServerResult],
    kind: str,
    rounds: int,
    numerator: str = DICOMITE_NAME,
    denominator: str = PEER_NAME,
) -> list[float | None]:
    dicomite, peer = results.get(numerator), results.get(denominator)
    out: list[float | None] = []
    for number in range(1, rounds + 1):
        d = next((m for m in dicomite.of(kind) if m.round == number), None) if dicomite else None
        p = next((m for m in peer.of(kind) if m.round == number), None) if peer else None
        out.append(d.value / p.value if d and p and p.value else None)
    return out


def print_report(results: dict[str, ServerResult], rounds: int) -> None:
    header = (
        f"{'kind':<9} {'round':<6} {'server':<18} {'value':>10} {'unit':<12} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'errors':>6} {'srv %cpu':>8} {'cli %cpu':>8} {'idle %cpu':>9}"
    )
    print("\n" + header)
    print("-" * len(header))

    def pct(x: float | None, m: Measurement) -> str:
        return "-" if x is None or not m.elapsed_s else f"{100 * x / m.elapsed_s:.0f}"

    for kind in KINDS:
        rows = sorted(
            ((m, r.name) for r in results.values() for m in r.of(kind)),
            key=lambda row: (row[0].round, row[0].position),
        )
        for m, name in rows:
            print(
                f"{kind:<9} {m.round:<6} {name:<18} {m.value:>10.1f} {UNITS[kind]:<12}"
                f" {m.p50_ms:>8.2f} {m.p99_ms:>8.2f} {m.errors:>6}"
                f" {pct(m.server_cpu_s, m):>8} {pct(m.client_cpu_s, m):>8}"
                f" {pct(m.idle_others_cpu_s, m):>9}"
            )
        for r in results.values():
            value, p50 = r.median(kind), r.median_p50(kind)
            if value is not None and p50 is not None:
                print(
                    f"{kind:<9} {'median':<6} {r.name:<18} {value:>10.1f} {UNITS[kind]:<12}"
                    f" {p50:>8.2f}"
                )
        print("-" * len(header))
    print(
        "(srv %cpu: the measured server's process group, cli %cpu: the load generator"
        " (wrk, or this process for STOW), idle %cpu: the other server; % of one core)"
    )
    for r in results.values():
        print(f"  {r.name}: {r.config}")
    for numerator in (DICOMITE_NAME, HTTPS_NAME):
        print_ratios(results, rounds, numerator)
    # what TLS costs Dicomite (1.00x: nothing); no target, a figure to shrink
    print_ratios(results, rounds, HTTPS_NAME, DICOMITE_NAME, title="what HTTPS costs,")
    print_reference(results, rounds)
    print_baseline_comparison(results, rounds)


def reference_comparison(results: dict[str, ServerResult], rounds: int) -> dict[str, Any]:
    """Whole-study WADO of each server as a share of the zero-copy reference's, and how much
    of the reference the WADO target asks for (empty when the reference did not run)."""
    reference = results.get(REFERENCE_NAME)
    ceiling = reference.median("wado") if reference else None
    if not ceiling:
        return {}
    out: dict[str, Any] = {"reference_mb_per_s": ceiling, "shares": {}, "round_shares": {}}
    for name in (PEER_NAME, DICOMITE_NAME, HTTPS_NAME, BASELINE_NAME):
        value = results[name].median("wado") if name in results else None
        if value is not None:
            out["shares"][name] = value / ceiling
            out["round_shares"][name] = round_ratios(results, "wado", rounds, name, REFERENCE_NAME)
    peer = results[PEER_NAME].median("wado") if PEER_NAME in results else None
    if peer is not None:
        needed = TARGETS["wado"] * peer
        out["target_mb_per_s"] = needed
        out["target_share_of_reference"] = needed / ceiling
    return out


def print_reference(results: dict[str, ServerResult], rounds: int) -> None:
    found = reference_comparison(results, rounds)
    if not found:
        return
    ceiling = found["reference_mb_per_s"]
    print(
        f"\nwhole-study WADO against {REFERENCE_NAME} ({ceiling:.0f} MB/s: the stored files sent"
        " with sendfile and nothing else, the zero-copy bound on this machine):"
    )
    for name, share in found["shares"].items():
        spread = format_spread(found["round_shares"][name])
        print(f"  {name:<15} {share:.2f} of it (per round {spread})")
    if "target_mb_per_s" in found:
        needed, share = found["target_mb_per_s"], found["target_share_of_reference"]
        where = "within" if share <= 1.0 else "BEYOND"
        print(
            f"  the target (>= {TARGETS['wado']}x {PEER_NAME}) asks for {needed:.0f} MB/s,"
            f" {share:.2f}x the reference: {where} it"
        )


def print_ratios(
    results: dict[str, ServerResult],
    rounds: int,
    numerator: str,
    denominator: str = PEER_NAME,
    title: str = "ratios",
) -> None:
    """`numerator`/`denominator` per kind with the per-round spread, and beside the targets
    when the denominator is the peer (nothing if either did not run)."""
    rs = ratios(results, numerator, denominator)
    if all(v is None for v in rs.values()):
        return
    print(f"\n{title} {numerator}/{denominator} (medians of {rounds} round(s)):")
    for kind in KINDS:
        value = rs[kind]
        spread = format_spread(round_ratios(results, kind, rounds, numerator, denominator))
        shown = "-" if value is None else f"{value:.2f}x"
        target = ""
        if denominator == PEER_NAME:
            verdict = "-" if value is None else ("met" if value >= TARGETS[kind] else "MISSED")
            target = f"target >= {TARGETS[kind]}x: {verdict}; "
        print(f"  {kind:<9} {UNITS[kind]:<12} {shown:>7}  ({target}per round {spread})")


def _targets(rs: dict[str, float | None]) -> dict[str, dict[str, Any]]:
    return {
        kind: {
            "ratio_min": TARGETS[kind],
            "met": None if (value := rs[kind]) is None else value >= TARGETS[kind],
        }
        for kind in KINDS
    }


def _measurement_json(m: Measurement) -> dict[str, Any]:
    return {
        **asdict(m),
        "value": m.value,
        "unit": UNITS[m.kind],
        "requests_per_s": m.requests_per_s,
        "mb_per_s": m.mb_per_s,
    }


def write_json(
    path: Path, results: dict[str, ServerResult], meta: dict[str, Any], rounds: int
) -> None:
    rs, https = ratios(results), ratios(results, HTTPS_NAME)
    doc = {
        **meta,
        "servers": [
            {
                "name": r.name,
                "config": r.config,
                "medians": {
                    kind: {
                        "value": r.median(kind),
                        "unit": UNITS[kind],
                        "p50_ms": r.median_p50(kind),
                    }
                    for kind in KINDS
                },
                "errors": r.errors,
                **r.extra,
                "measurements": [_measurement_json(m) for m in r.measurements],
            }
            for r in results.values()
        ],
        "ratios_dicomite_over_peer": rs,
        "round_ratios": {kind: round_ratios(results, kind, rounds) for kind in KINDS},
        "ratios_https_over_peer": https,
        "round_ratios_https": {
            kind: round_ratios(results, kind, rounds, HTTPS_NAME) for kind in KINDS
        },
        "ratios_https_over_http": ratios(results, HTTPS_NAME, DICOMITE_NAME),
        "ratio_basis": f"median over {rounds} round(s) of each server's value",
        "baseline_comparison": baseline_comparison(results, rounds),
        "wado_reference": reference_comparison(results, rounds),
        "targets": _targets(rs),
        "targets_https": _targets(https),
    }
    write_results(path, doc)


# ----------------------------------------------------------------- main mode
