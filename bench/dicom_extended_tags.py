#!/usr/bin/env python3
"""Extended query tags at scale: reindexing rate and QIDO latency on the new tags.

Starts `dicomite serve --http` at its defaults, stores --instances small CT instances (the
--scale corpus of dicom_throughput.py: 2 series of 5 instances per study), measures plain
QIDO (PatientID), adds three extended query tags (SeriesDate and BodyPartExamined at series
level, ContentDate at instance level; the corpus's dates are its studies' dates) and times
their reindex operation from the POST to its 200 (target: >= 1,000 instances/s), then
measures QIDO on them with wrk at 1 and 8 connections (target: p50 <= 20 ms at 8) and plain
QIDO again (having the tags must not slow it). Results in
bench/results/dicom_extended_tags.json. Exit status 1 when a request failed; a missed target
is reported, as the other DICOM benchmarks do.

    .venv/bin/python bench/dicom_extended_tags.py                   # 100,000 instances
    .venv/bin/python bench/dicom_extended_tags.py --instances 2000  # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _dicom_base import (
    ACCEPT_JSON,
    QIDO_CONNECTIONS,
    SCALE_INSTANCES_PER_SERIES,
    SCALE_SERIES_PER_STUDY,
    SCALE_TARGET_P50_MS,
    STOW_CONCURRENCY,
    Server,
    http_request,
    run_operation,
)
from _dicom_client import eof_delimited, stow_batches
from _dicom_dicomite import start_servers
from _dicom_measure import run_wrk
from _processes import RESULTS_DIR, base_meta, raise_on_sigterm
from _report import write_results
from _wrk import ensure_wrk, write_get_script

RESULTS_FILE = RESULTS_DIR / "dicom_extended_tags.json"
TARGET_REINDEX_PER_S = 1_000.0
TAGS = [
    {"path": "SeriesDate", "level": "Series"},
    {"path": "ContentDate", "level": "Instance"},
    {"path": "BodyPartExamined", "level": "Series"},
]


def store_corpus(server: Server, count: int) -> list[tuple[str, str, str]]:
    """Store `count` small instances, one request per study; (study UID, patient ID, study
    date) each."""
    import dicom_corpus

    per_study = SCALE_SERIES_PER_STUDY * SCALE_INSTANCES_PER_SERIES
    studies = max(1, count // per_study)
    generated: Iterator[Any] = dicom_corpus.small_studies(
        studies, SCALE_SERIES_PER_STUDY, SCALE_INSTANCES_PER_SERIES
    )
    lock, index = threading.Lock(), []

    def next_batch() -> list[bytes]:
        with lock:
            study = next(generated)
            index.append((study.study_uid, study.patient_id, study.study_date))
            instances: list[bytes] = study.instances
            return instances

    stats, elapsed = asyncio.run(
        stow_batches(server, [next_batch] * studies, STOW_CONCURRENCY, progress_every_s=15)
    )
    print(f"stored {stats.instances} instances in {elapsed:.0f} s, {stats.failed_instances} failed")
    if stats.failed_instances:
        raise SystemExit(f"STOW failed: {stats.first_error}")
    return index


def week(day: str) -> str:
    end = datetime.strptime(day, "%Y%m%d") + timedelta(days=6)
    return f"{day}-{end:%Y%m%d}"


def measure(
    server: Server, work: Path, kind: str, paths: list[str], duration: float
) -> dict[str, Any]:
    """wrk at 1 and QIDO_CONNECTIONS connections over `paths`, after a spot check."""
    headers = {**server.headers, "Accept": ACCEPT_JSON, "Accept-Encoding": "identity"}
    empty = 0
    for path in paths[:20]:
        status, _, body = http_request("GET", server.base + path, headers)
        empty += status != 200 or not json.loads(body or b"[]")
    script = write_get_script(work / f"{kind}.lua", [server.root + p for p in paths], headers)
    eof = eof_delimited(server, paths[0], ACCEPT_JSON)
    runs = {c: run_wrk(server.origin, script, c, duration, eof) for c in (1, QIDO_CONNECTIONS)}
    server.check_alive()
    one, many = runs[1], runs[QIDO_CONNECTIONS]
    print(
        f"  {kind:<24} c1 p50 {one.p50_ms:6.2f} ms | c{QIDO_CONNECTIONS} p50 {many.p50_ms:6.2f} ms"
        f" p99 {many.p99_ms:6.2f} ms ({many.requests / many.elapsed_s:5.0f}/s)"
        f"  errors {one.errors + many.errors}, empty {empty}/{min(20, len(paths))}",
        flush=True,
    )
    return {
        "example": paths[0],
        "spot_check_empty_or_failed": empty,
        **{
            f"c{c}": {**asdict(run), "requests_per_s": run.requests / run.elapsed_s}
            for c, run in runs.items()
        },
    }


def run(args: argparse.Namespace) -> int:
    out: dict[str, Any] = {**base_meta(), "wrk": ensure_wrk(), "instances": args.instances}
    with (
        tempfile.TemporaryDirectory(prefix="dicom-bench-eqt-") as folder,
        contextlib.ExitStack() as stack,
    ):
        work = Path(folder)
        server = start_servers(stack, "dicomite", work, args.workers, None)[0]
        server.fresh_auth()
        index = store_corpus(server, args.instances)
        picks = index[:: max(1, len(index) // 200)][:200]
        plain = [f"/studies?PatientID={pid}" for _, pid, _ in picks]
        print("QIDO before the tags:", flush=True)
        queries = {
            "plain_patient_id_before": measure(server, work, "plain_before", plain, args.duration)
        }

        seconds, operation = run_operation(server, "/extendedquerytags", TAGS)
        rate = args.instances / seconds
        print(
            f"reindexed {args.instances} instances on {len(TAGS)} tags in {seconds:.1f} s:"
            f" {rate:.0f} instances/s (target >= {TARGET_REINDEX_PER_S:.0f})",
            flush=True,
        )
        out["reindex"] = {"seconds": seconds, "instances_per_s": rate, "operation": operation}

        print("QIDO on the tags:", flush=True)
        kinds = {
            "series_date_week": [
                f"/series?SeriesDate={week(day)}&limit=100" for _, _, day in picks
            ],
            "content_date_day": [f"/instances?ContentDate={day}&limit=100" for *_, day in picks],
            "body_part_in_study": [
                f"/studies/{uid}/series?BodyPartExamined=CHEST" for uid, *_ in picks
            ],
            "plain_patient_id_after": plain,
        }
        for kind, paths in kinds.items():
            queries[kind] = measure(server, work, kind, paths, args.duration)
    out["queries"] = queries
    worst = max(
        queries[k][f"c{QIDO_CONNECTIONS}"]["p50_ms"]
        for k in ("series_date_week", "content_date_day", "body_part_in_study")
    )
    failed = any(
        q["spot_check_empty_or_failed"] or q["c1"]["errors"] or q[f"c{QIDO_CONNECTIONS}"]["errors"]
        for q in queries.values()
    )
    out["targets"] = {
        "reindex_per_s": {"target": TARGET_REINDEX_PER_S, "met": rate >= TARGET_REINDEX_PER_S},
        "qido_c8_p50_ms": {
            "target": SCALE_TARGET_P50_MS,
            "worst": worst,
            "met": worst <= SCALE_TARGET_P50_MS,
        },
    }
    print(
        f"worst QIDO p50 on the tags at {QIDO_CONNECTIONS} connections: {worst:.2f} ms"
        f" (target <= {SCALE_TARGET_P50_MS:.0f} ms)"
    )
    write_results(RESULTS_FILE, out)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=None, help="default: dicomite's own")
    args = parser.parse_args(argv)
    if not 10 <= args.instances <= 1_000_000:
        parser.error("--instances must be 10..1000000")
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
