"""Token benchmark report: the table, the medians, the ratio and the results JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from _baseline import BASELINE_NAME
from _report import (
    SLOWER_BELOW,
    format_comparison,
    format_spread,
    median_ratio_interval,
    slower_verdict,
    write_results,
)
from _token_setup import (
    DICOMITE_NAME,
    ONE_WORKER_NAME,
    PEER_NAME,
    PEER_ONE_CORE_NAME,
    RESULTS_FILE,
    TARGET_P99_MS,
    TARGET_RATIO,
    WRK_CONNECTIONS,
    WRK_THREADS,
    Measurement,
    ServerResult,
    SigningCeiling,
)


def _find(results: list[ServerResult], name: str) -> ServerResult | None:
    return next((r for r in results if r.name == name), None)


def _ratio(results: list[ServerResult]) -> float | None:
    """Dicomite's median tokens/s over the peer's median tokens/s."""
    dicomite, peer = _find(results, DICOMITE_NAME), _find(results, PEER_NAME)
    if dicomite is None or peer is None or not peer.tokens_per_s:
        return None
    return dicomite.tokens_per_s / peer.tokens_per_s


def _round_ratios(
    results: list[ServerResult],
    rounds: int,
    numerator: str = DICOMITE_NAME,
    denominator: str = PEER_NAME,
) -> list[float | None]:
    """Per-round ratios of two servers' tokens/s (measured back to back in each round)."""
    dicomite, peer = _find(results, numerator), _find(results, denominator)
    ratios: list[float | None] = []
    for number in range(1, rounds + 1):
        d = dicomite.in_round(number) if dicomite else None
        p = peer.in_round(number) if peer else None
        ok = d is not None and p is not None and p.wrk.tokens_per_s > 0
        ratios.append(d.wrk.tokens_per_s / p.wrk.tokens_per_s if ok and d and p else None)
    return ratios


def _round_order(results: list[ServerResult], number: int) -> list[str]:
    """Server names in the order they were measured in round `number`."""
    positions = [(m.position, r.name) for r in results for m in r.measurements if m.round == number]
    return [name for _, name in sorted(positions)]


def comparisons(
    results: list[ServerResult], ceiling: SigningCeiling | None, rounds: int
) -> dict[str, Any]:
    """Current/baseline tokens/s (median per-round ratio, 95 % bootstrap interval, verdict);
    per core (one worker against one node process, both pinned to one CPU); each server's share
    of the signing ceiling."""
    out: dict[str, Any] = {}
    pairs = {
        "current_over_baseline": (DICOMITE_NAME, BASELINE_NAME),
        "per_core": (ONE_WORKER_NAME, PEER_ONE_CORE_NAME),
    }
    for key, (numerator, denominator) in pairs.items():
        paired = _round_ratios(results, rounds, numerator, denominator)
        ratios = [r for r in paired if r is not None]
        num, den = _find(results, numerator), _find(results, denominator)
        if not ratios or num is None or den is None:
            continue
        median, low, high = median_ratio_interval(ratios)
        out[key] = {
            numerator: num.tokens_per_s,
            denominator: den.tokens_per_s,
            "round_ratios": paired,
            "median_ratio": median,
            "interval_95": [low, high],
            "verdict": slower_verdict(high),
        }
    if ceiling is not None:
        # One process signs on one core; the default Dicomite and the baseline on all of them.
        # (The unpinned node process signs on its thread pool, on more than one core.)
        ceilings = {
            PEER_NAME: ceiling.one_process_per_s,
            PEER_ONE_CORE_NAME: ceiling.one_process_per_s,
            ONE_WORKER_NAME: ceiling.one_process_per_s,
            DICOMITE_NAME: ceiling.two_processes_per_s,
            BASELINE_NAME: ceiling.two_processes_per_s,
        }
        out["share_of_signing_ceiling"] = {
            r.name: r.tokens_per_s / ceilings[r.name] for r in results if ceilings.get(r.name)
        }
    return out


def print_comparisons(
    results: list[ServerResult], ceiling: SigningCeiling | None, rounds: int
) -> None:
    found = comparisons(results, ceiling, rounds)
    if "current_over_baseline" in found:
        c = found["current_over_baseline"]
        base = _find(results, BASELINE_NAME)
        print(
            f"\ncurrent/baseline ({base.config if base else ''}), {rounds} paired round(s):"
            " median of the per-round ratios, 95 % percentile-bootstrap interval over rounds"
            f" (10,000 resamples, fixed seed); SLOWER only when it lies below {SLOWER_BELOW}:"
        )
        print(
            format_comparison("tokens", "tokens/s", c[DICOMITE_NAME], c[BASELINE_NAME], _present(c))
        )
    if "per_core" in found:
        c = found["per_core"]
        low, high = c["interval_95"]
        print(
            f"per core (each pinned to one CPU, wrk on the others): {ONE_WORKER_NAME} (one worker)"
            f" {c[ONE_WORKER_NAME]:.0f} tokens/s, {PEER_ONE_CORE_NAME} (one node process)"
            f" {c[PEER_ONE_CORE_NAME]:.0f}: {c['median_ratio']:.2f}x (target >= 1.0x;"
            f" 95% [{low:.2f}, {high:.2f}]; per round {format_spread(c['round_ratios'])})"
        )
        peer = _find(results, PEER_NAME)
        cores = peer.cores_used if peer else None
        if peer and cores is not None:
            print(
                f"  unpinned, the one node process ({PEER_NAME}) used {cores:.2f} cores"
                f" for {peer.tokens_per_s:.0f} tokens/s"
            )
    shares = found.get("share_of_signing_ceiling")
    if shares:
        print(
            "share of the RS256 signing ceiling (1 process for the node processes and one worker,"
            " 2 processes otherwise): "
            + ", ".join(f"{name} {100 * share:.0f} %" for name, share in shares.items())
        )


def _present(found: dict[str, Any]) -> list[float]:
    return [r for r in found["round_ratios"] if r is not None]


def _idle_pct(m: Measurement) -> str:
    if m.idle_others_cpu_s is None or not m.wrk.elapsed_s:
        return "-"
    return f"{100 * m.idle_others_cpu_s / m.wrk.elapsed_s:.2f}"


def print_report(results: list[ServerResult], ceiling: SigningCeiling | None, rounds: int) -> None:
    print(
        f"\nwrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} --latency, POST form body, loopback;"
        f" {rounds} round(s), both servers up, one under load at a time"
    )
    header = (
        f"{'round':<7} {'server':<18} {'tokens/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'errors':>7} {'sock err':>8} {'cores':>6} {'idle %cpu':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = sorted(
        ((m, r.name) for r in results for m in r.measurements),
        key=lambda row: (row[0].round, row[0].position),
    )
    for m, name in rows:
        w = m.wrk
        print(
            f"{m.round:<7} {name:<18} {w.tokens_per_s:>10.1f} {w.p50_ms:>8.2f} {w.p99_ms:>8.2f}"
            f" {w.non_2xx:>7} {w.socket_errors:>8} {_cores(m.cores_used):>6} {_idle_pct(m):>9}"
        )
    print("-" * len(header))
    for r in results:
        print(
            f"{'median':<7} {r.name:<18} {r.tokens_per_s:>10.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}"
            f" {r.non_2xx:>7} {r.socket_errors:>8} {_cores(r.cores_used):>6}"
        )
    print(
        "(errors and sock err on the median lines are totals over all rounds; cores: CPU the"
        " server used, in cores; idle %cpu: CPU the idle server used meanwhile, % of one core)"
    )
    for r in results:
        print(f"  {r.name}: {r.config}")
    if ceiling:
        print(
            f"RS256-2048 signing ceiling (cryptography): {ceiling.one_process_per_s:.0f}/s"
            f" on 1 process, {ceiling.two_processes_per_s:.0f}/s with 2 processes"
        )
    ratio = _ratio(results)
    dicomite = _find(results, DICOMITE_NAME)
    if ratio is not None and dicomite is not None:
        per_round = format_spread(_round_ratios(results, rounds))
        print(f"per-round ratios {DICOMITE_NAME}/{PEER_NAME}: {per_round}")
        print(
            f"ratio {DICOMITE_NAME}/{PEER_NAME} (median of {rounds} rounds): {ratio:.2f}x"
            f" (target >= {TARGET_RATIO}x); {DICOMITE_NAME} p99 {dicomite.p99_ms:.1f} ms"
            f" (target <= {TARGET_P99_MS:.0f} ms)"
        )
    print_comparisons(results, ceiling, rounds)


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _measurement_json(m: Measurement) -> dict[str, Any]:
    return {
        "round": m.round,
        "position": m.position,
        **asdict(m.wrk),
        "tokens_per_s": m.wrk.tokens_per_s,
        "idle_others_cpu_s": m.idle_others_cpu_s,
        "server_cpu_s": m.server_cpu_s,
        "cores_used": m.cores_used,
    }


def write_json(
    results: list[ServerResult],
    ceiling: SigningCeiling | None,
    meta: dict[str, Any],
    rounds: int,
) -> None:
    ratio = _ratio(results)
    dicomite = _find(results, DICOMITE_NAME)
    doc = {
        **meta,
        "signing_ceiling": asdict(ceiling) if ceiling else None,
        "servers": [
            {
                "name": r.name,
                "config": r.config,
                # Medians over the rounds; error counts are totals over the rounds.
                "tokens_per_s": r.tokens_per_s,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "non_2xx": r.non_2xx,
                "socket_errors": r.socket_errors,
                **r.extra,
                "rounds": [_measurement_json(m) for m in r.measurements],
            }
            for r in results
        ],
        "rounds": [
            {
                "round": number,
                "order": _round_order(results, number),
                "ratio_dicomite_over_peer": round_ratio,
            }
            for number, round_ratio in enumerate(_round_ratios(results, rounds), start=1)
        ],
        "ratio_dicomite_over_peer": ratio,
        "ratio_basis": f"median tokens/s over {rounds} round(s)",
        "comparisons": comparisons(results, ceiling, rounds),
        "targets": {
            "ratio_min": TARGET_RATIO,
            "p99_ms_max": TARGET_P99_MS,
            "met": (ratio is not None and dicomite is not None)
            and ratio >= TARGET_RATIO
            and dicomite.p99_ms <= TARGET_P99_MS,
        },
    }
    write_results(RESULTS_FILE, doc)
