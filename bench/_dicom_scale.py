"""The --scale mode: many small instances indexed, STOW's rate at the start against its rate
at the end, QIDO latency per query kind, then (Dicomite) a mixed load with each server
process's RSS before and after.

Each server runs alone (stopped before the next starts): Dicomite on SQLite, Dicomite on
PostgreSQL (a server of our own, at PostgreSQL's durable defaults), and Orthanc with
``--only all``, which stores until it has as many instances or ``--scale-peer-minutes`` ran
out; its queries then run over what it stored."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _dicom_base import (
    ACCEPT_JSON,
    ACCEPT_WADO,
    MB,
    PEER_NAME,
    QIDO_CONNECTIONS,
    QIDO_LIMIT,
    SCALE_INSTANCES_PER_SERIES,
    SCALE_RESULTS_FILE,
    SCALE_SERIES_PER_STUDY,
    SCALE_TARGET_P50_MS,
    STOW_CONCURRENCY,
    Server,
    http_request,
)
from _dicom_client import StowStats, eof_delimited, stow_batches
from _dicom_dicomite import start_dicomite
from _dicom_measure import query_string, run_wrk
from _dicom_orthanc import start_orthanc
from _processes import REPO_ROOT, group_pids, group_rss_bytes
from _report import write_results
from _wrk import WrkRun, write_get_script

SCALE_TARGET_P99_MS = 100.0
STOW_END_TARGET = 0.8  # the last tenth's rate within 20 % of the first tenth's
RSS_GROWTH_TARGET_MB = 50.0  # per server process, over the mixed load after its warm-up
MIXED_WARMUP_S = 60.0
MIXED_STOW_CONCURRENCY = 2  # STOW requests in flight beside the GETs of the mixed load
MIXED_WADO_CONNECTIONS = 2
PICKS = 200  # studies the queries are spread over
PER_STUDY = SCALE_SERIES_PER_STUDY * SCALE_INSTANCES_PER_SERIES
# PostgreSQL's own defaults, as a user runs it (the tests' server turns fsync off).
POSTGRES_SETTINGS = {"listen_addresses": "127.0.0.1", "max_connections": "100"}
MIXED_SEED = 7  # the studies stored during the mixed load (their UIDs differ from the corpus')


@dataclass(frozen=True)
class StudyKeys:
    """What the queries need of one generated study."""

    uid: str
    patient_name: str
    patient_id: str
    study_date: str
    series_uids: list[str]


def add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale-instances", type=int, default=100_000)
    parser.add_argument(
        "--scale-databases",
        default="sqlite,postgres",
        help="Dicomite's databases for --scale, comma-separated: sqlite, postgres",
    )
    parser.add_argument(
        "--scale-peer-minutes",
        type=float,
        default=30.0,
        help="--scale: Orthanc stores for at most this long (then is measured where it stopped)",
    )
    parser.add_argument(
        "--scale-mixed-minutes",
        type=float,
        default=10.0,
        help="--scale: minutes of mixed load on Dicomite after the queries (0 skips it)",
    )


def check_scale_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 10 <= args.scale_instances <= 1_000_000:
        parser.error("--scale-instances must be 10..1000000")
    databases = [name.strip() for name in args.scale_databases.split(",") if name.strip()]
    if not databases or not set(databases) <= {"sqlite", "postgres"}:
        parser.error("--scale-databases lists sqlite and/or postgres")
    args.scale_databases = databases
    if not 0 < args.scale_peer_minutes <= 30:
        parser.error("--scale-peer-minutes must be more than 0 and at most 30")
    if not 0 <= args.scale_mixed_minutes <= 60:
        parser.error("--scale-mixed-minutes must be 0..60")
    if 0 < args.scale_mixed_minutes * 60 <= MIXED_WARMUP_S:
        parser.error(f"--scale-mixed-minutes must be 0 or longer than {MIXED_WARMUP_S:.0f} s")


def run_scale(
    args: argparse.Namespace, meta: dict[str, Any], orthanc: dict[str, str] | None
) -> int:
    """Store --scale-instances small instances into each server, then measure it."""
    import dicom_corpus

    study_count = max(1, args.scale_instances // PER_STUDY)
    keys = [
        StudyKeys(s.study_uid, s.patient_name, s.patient_id, s.study_date, s.series_uids)
        for s in dicom_corpus.small_studies(
            study_count, SCALE_SERIES_PER_STUDY, SCALE_INSTANCES_PER_SERIES
        )
    ]
    out: dict[str, Any] = {
        **meta,
        "scale": {"instances": study_count * PER_STUDY, "studies": study_count, "servers": []},
        "targets": {
            "c8_p50_ms": SCALE_TARGET_P50_MS,
            "c8_p99_ms": SCALE_TARGET_P99_MS,
            "stow_end_vs_start": STOW_END_TARGET,
            "rss_growth_mb": RSS_GROWTH_TARGET_MB,
        },
    }
    failed = False
    starters = _starters(args, orthanc)
    with tempfile.TemporaryDirectory(prefix="dicom-bench-scale-") as work:
        for label, start in starters:
            with contextlib.ExitStack() as stack:
                server = start(stack, Path(work) / label)
                entry, ok = _measure(server, keys, args)
            shutil.rmtree(Path(work) / label, ignore_errors=True)
            failed |= not ok
            out["scale"]["servers"].append(entry)
            write_results(SCALE_RESULTS_FILE, out)  # after each server: a long run keeps them
    _print_summary(out["scale"]["servers"])
    return 1 if failed else 0


Starter = Callable[[contextlib.ExitStack, Path], Server]


def _starters(
    args: argparse.Namespace, orthanc: dict[str, str] | None
) -> list[tuple[str, Starter]]:
    starters: list[tuple[str, Starter]] = []
    if args.only in ("all", "dicomite"):
        for database in args.scale_databases:
            starters.append((f"dicomite-{database}", _dicomite_starter(args, database)))
    if args.only in ("all", "peer") and orthanc is not None:
        starters.append(("orthanc", lambda stack, work: start_orthanc(stack, work, orthanc)))
    return starters


def _dicomite_starter(args: argparse.Namespace, database: str) -> Starter:
    def start(stack: contextlib.ExitStack, work: Path) -> Server:
        work.mkdir(parents=True)
        url = stack.enter_context(_postgres()) if database == "postgres" else None
        return start_dicomite(stack, work / "data", args.workers, database_url=url)

    return start


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    """A PostgreSQL server of our own (the tests' fixture, with durable settings), in a
    folder of its own: the bench's work folder is closed to the ``postgres`` user."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.fixtures.postgres import PostgresServer, postgres_bin_dir

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL under /usr/lib/postgresql (scripts/test installs it)")
    root = Path(tempfile.mkdtemp(prefix="dicom-bench-postgres-"))
    server = PostgresServer(bin_dir=bin_dir, root=root, settings=dict(POSTGRES_SETTINGS))
    server.start()
    try:
        print(f"  PostgreSQL {bin_dir.parent.name} on port {server.port}", flush=True)
        yield server.create_database()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------- storing


def _store(server: Server, count: int, deadline_s: float | None) -> tuple[StowStats, float]:
    """One STOW request per generated study, STOW_CONCURRENCY in flight, in corpus order."""
    import dicom_corpus

    server.fresh_auth()
    generated = dicom_corpus.small_studies(
        count, SCALE_SERIES_PER_STUDY, SCALE_INSTANCES_PER_SERIES
    )
    lock = threading.Lock()

    def next_batch() -> list[bytes]:
        with lock:
            instances: list[bytes] = next(generated).instances
            return instances

    batches = [next_batch] * count
    return asyncio.run(
        stow_batches(server, batches, STOW_CONCURRENCY, progress_every_s=30, deadline_s=deadline_s)
    )


def _stow_rates(stats: StowStats, elapsed: float) -> dict[str, float]:
    """The rate over the first and over the last tenth of what was stored."""
    tenth = max(1, stats.instances // 10)
    first = stats.rate(0, tenth)
    last = stats.rate(stats.instances - tenth, stats.instances)
    return {
        "overall_per_s": stats.instances / elapsed if elapsed else 0.0,
        "first_tenth_per_s": first,
        "last_tenth_per_s": last,
        "end_vs_start": last / first if first else 0.0,
    }


# ------------------------------------------------------------------------- queries


def _query_kinds(picks: list[StudyKeys]) -> dict[str, list[str]]:
    def week(day: str) -> str:
        end = datetime.strptime(day, "%Y%m%d") + timedelta(days=6)
        return f"{day}-{end:%Y%m%d}"

    def name_prefix(name: str) -> str:  # family name and the start of the given name: SMITH^JO*
        family, given = name.split("^")[:2]
        return f"{family}^{given[:2]}*"

    return {
        "patient_name_prefix": [
            "/studies?" + query_string({"PatientName": name_prefix(s.patient_name)}) for s in picks
        ],
        "patient_id": [f"/studies?PatientID={s.patient_id}" for s in picks],
        "study_date_week": [
            "/studies?" + query_string({"StudyDate": week(s.study_date), "limit": QIDO_LIMIT})
            for s in picks
        ],
        "series_of_study": [f"/studies/{s.uid}/series" for s in picks],
        "instances_of_series": [
            f"/studies/{s.uid}/series/{s.series_uids[0]}/instances" for s in picks
        ],
    }


def _headers(server: Server, accept: str) -> dict[str, str]:
    return {**server.headers, "Accept": accept, "Accept-Encoding": "identity"}


def _wrk_figures(run: WrkRun) -> dict[str, Any]:
    return {**asdict(run), "requests_per_s": run.requests / run.elapsed_s}


def _queries(
    server: Server, picks: list[StudyKeys], duration: float, scripts: Path
) -> tuple[dict[str, Any], bool]:
    server.fresh_auth()
    headers = _headers(server, ACCEPT_JSON)
    figures: dict[str, Any] = {}
    failed = False
    for kind, paths in _query_kinds(picks).items():
        empty = 0
        for path in paths[:20]:  # spot check: every query must find something
            status, _, body = http_request("GET", server.base + path, headers)
            if status != 200 or not json.loads(body or b"[]"):
                empty += 1
        script = write_get_script(
            scripts / f"{kind}.lua", [server.root + p for p in paths], headers
        )
        eof = eof_delimited(server, paths[0], ACCEPT_JSON)
        single = run_wrk(server.origin, script, 1, duration, eof)
        loaded = run_wrk(server.origin, script, QIDO_CONNECTIONS, duration, eof)
        server.check_alive()
        failed |= bool(single.errors or loaded.errors or empty)
        met = loaded.p50_ms <= SCALE_TARGET_P50_MS and loaded.p99_ms <= SCALE_TARGET_P99_MS
        figures[kind] = {
            "example": paths[0],
            "spot_check_empty_or_failed": empty,
            "c1": _wrk_figures(single),
            f"c{QIDO_CONNECTIONS}": _wrk_figures(loaded),
            "target_met": met,
        }
        print(
            f"  {kind:<20} c1 p50 {single.p50_ms:7.2f} ms |"
            f" c{QIDO_CONNECTIONS} p50 {loaded.p50_ms:7.2f} ms p99 {loaded.p99_ms:7.2f} ms"
            f" ({loaded.requests / loaded.elapsed_s:6.0f}/s)  errors"
            f" {single.errors + loaded.errors}, empty {empty}/20"
            f"  {'met' if met else 'MISSED'}",
            flush=True,
        )
    return figures, failed


# --------------------------------------------------------------------- mixed load


def _rss_by_process(server: Server) -> dict[int, int]:
    return {pid: group_rss_bytes([pid]) for pid in group_pids(server.proc.pid)}


def _mixed_load(
    server: Server, picks: list[StudyKeys], minutes: float, scripts: Path
) -> tuple[dict[str, Any], bool]:
    """GETs of every query kind and of study metadata (QIDO_CONNECTIONS - 2 connections),
    whole-study WADO (2), and STOW of new studies (2 in flight) for `minutes`; each server
    process's RSS after MIXED_WARMUP_S and at the end."""
    import dicom_corpus

    seconds = minutes * 60
    server.fresh_auth()
    json_headers = _headers(server, ACCEPT_JSON)
    json_paths = [p for paths in _query_kinds(picks).values() for p in paths]
    json_paths += [f"/studies/{s.uid}/metadata" for s in picks]
    json_script = write_get_script(
        scripts / "mixed-json.lua", [server.root + p for p in json_paths], json_headers
    )
    wado_headers = _headers(server, ACCEPT_WADO)
    wado_script = write_get_script(
        scripts / "mixed-wado.lua", [f"{server.root}/studies/{s.uid}" for s in picks], wado_headers
    )
    json_connections = QIDO_CONNECTIONS - MIXED_WADO_CONNECTIONS
    runs: dict[str, WrkRun] = {}

    def get_load(name: str, script: Path, connections: int) -> None:
        runs[name] = run_wrk(server.origin, script, connections, seconds, eof=False)

    new_studies = dicom_corpus.small_studies(
        10**6, SCALE_SERIES_PER_STUDY, SCALE_INSTANCES_PER_SERIES, seed=MIXED_SEED
    )
    stow: list[StowStats] = []

    def store_new() -> None:
        batches = [lambda: next(new_studies).instances] * 10**5
        stats, _ = asyncio.run(
            stow_batches(server, batches, MIXED_STOW_CONCURRENCY, deadline_s=seconds)
        )
        stow.append(stats)

    threads = [
        threading.Thread(target=get_load, args=("json", json_script, json_connections)),
        threading.Thread(target=get_load, args=("wado", wado_script, MIXED_WADO_CONNECTIONS)),
        threading.Thread(target=store_new),
    ]
    for thread in threads:
        thread.start()
    time.sleep(MIXED_WARMUP_S)
    warm = _rss_by_process(server)
    for thread in threads:
        thread.join()
    end = _rss_by_process(server)
    server.check_alive()
    growth = {pid: (end[pid] - warm[pid]) / MB for pid in warm if pid in end}
    worst = max(growth.values(), default=0.0)
    stats = stow[0] if stow else StowStats(first_error="the STOW thread failed")
    errors = sum(run.errors for run in runs.values()) + stats.failed_instances
    failed = bool(errors) or len(runs) < 2 or not stow
    figures = {
        "seconds": seconds,
        "warmup_s": MIXED_WARMUP_S,
        "gets": {name: _wrk_figures(run) for name, run in runs.items()},
        "stow": {
            "instances": stats.instances,
            "failed": stats.failed_instances,
            "first_error": stats.first_error,
        },
        "rss_mb_after_warmup": {str(pid): rss / MB for pid, rss in warm.items()},
        "rss_mb_at_end": {str(pid): rss / MB for pid, rss in end.items()},
        "worst_rss_growth_mb": worst,
        "target_met": worst <= RSS_GROWTH_TARGET_MB,
    }
    rates = ", ".join(
        f"{name} {run.requests / run.elapsed_s:.0f}/s p99 {run.p99_ms:.1f} ms"
        for name, run in runs.items()
    )
    print(
        f"  mixed load {minutes:g} min: {rates}, STOW {stats.instances} new instances;"
        f" errors {errors}; RSS per process after warm-up"
        f" {', '.join(f'{rss / MB:.0f}' for rss in warm.values())} MB,"
        f" worst growth {worst:+.1f} MB (target <= {RSS_GROWTH_TARGET_MB:.0f}:"
        f" {'met' if worst <= RSS_GROWTH_TARGET_MB else 'MISSED'})",
        flush=True,
    )
    return figures, failed


# ----------------------------------------------------------------------- a server


def _measure(
    server: Server, keys: list[StudyKeys], args: argparse.Namespace
) -> tuple[dict[str, Any], bool]:
    peer = server.name == PEER_NAME
    deadline = args.scale_peer_minutes * 60 if peer else None
    print(
        f"\n[{server.name}] storing {len(keys) * PER_STUDY} small instances ({len(keys)} studies,"
        f" one request per study{f', at most {args.scale_peer_minutes:g} min' if peer else ''})"
        "...",
        flush=True,
    )
    stats, elapsed = _store(server, len(keys), deadline)
    rates = _stow_rates(stats, elapsed)
    stow_met = rates["end_vs_start"] >= STOW_END_TARGET
    print(
        f"[{server.name}] stored {stats.instances} in {elapsed:.0f} s"
        f" ({rates['overall_per_s']:.0f}/s; first tenth {rates['first_tenth_per_s']:.0f}/s,"
        f" last tenth {rates['last_tenth_per_s']:.0f}/s: {rates['end_vs_start']:.2f}x, target"
        f" >= {STOW_END_TARGET}: {'met' if stow_met else 'MISSED'}),"
        f" {stats.failed_instances} failed",
        flush=True,
    )
    if stats.first_error:
        print(f"  first failure: {stats.first_error}")
    # The studies sent: the first `requests` of the corpus (requests take them in order).
    sent = keys[: stats.requests]
    picks = sent[:: max(1, len(sent) // PICKS)][:PICKS]
    entry: dict[str, Any] = {
        "name": server.name,
        "config": server.config,
        "stored": stats.instances,
        "failed": stats.failed_instances,
        "store_seconds": elapsed,
        "stow": {**rates, "target_met": stow_met},
        "rss_mb_after_store": sum(_rss_by_process(server).values()) / MB,
    }
    failed = stats.failed_instances > 0
    scripts = server.log_path.parent / f"lua-scale-{server.name}"
    scripts.mkdir(exist_ok=True)
    entry["queries"], query_failed = _queries(server, picks, args.duration, scripts)
    failed |= query_failed
    if not peer and args.scale_mixed_minutes:
        entry["mixed"], mixed_failed = _mixed_load(server, picks, args.scale_mixed_minutes, scripts)
        failed |= mixed_failed
    return entry, not failed


def _print_summary(servers: list[dict[str, Any]]) -> None:
    print(
        "\n--scale summary (targets: STOW last tenth >= 0.8x the first; every query kind at"
        f" {QIDO_CONNECTIONS} connections p50 <= {SCALE_TARGET_P50_MS:.0f} ms and p99 <="
        f" {SCALE_TARGET_P99_MS:.0f} ms; RSS growth <= {RSS_GROWTH_TARGET_MB:.0f} MB)"
    )
    for entry in servers:
        loaded = [q[f"c{QIDO_CONNECTIONS}"] for q in entry["queries"].values()]
        worst_p50 = max((q["p50_ms"] for q in loaded), default=0.0)
        worst_p99 = max((q["p99_ms"] for q in loaded), default=0.0)
        mixed = entry.get("mixed")
        rss = f"{mixed['worst_rss_growth_mb']:+.1f} MB" if mixed else "not measured"
        print(
            f"  {entry['name']:<18} {entry['stored']:>9} instances,"
            f" STOW end/start {entry['stow']['end_vs_start']:.2f}x,"
            f" worst p50 {worst_p50:.2f} ms, worst p99 {worst_p99:.2f} ms, RSS growth {rss}"
        )
