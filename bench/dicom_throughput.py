"""DICOMweb throughput: Dicomite vs Orthanc 1.10 + its DICOMweb plugin, side by side.

Run from the repository root:  .venv/bin/python bench/dicom_throughput.py

What it does, in order (default mode):
1. makes sure Orthanc and its DICOMweb plugin (Debian packages `orthanc`,
   `orthanc-dicomweb`), `wrk` and pydicom are installed, and that the Debian
   `orthanc` service is stopped and disabled (only our own instance runs);
2. generates (once, then cached under bench/results/dicom-cache/) a
   deterministic corpus: --studies studies x 4 series x 10 CT images of
   512x512 (and/or, --corpus, 128x128) 16-bit pixels, uncompressed; steps 3-7
   run once per corpus;
3. starts both servers once, each on a free loopback port, in its own process
   group and with a temporary storage folder; Dicomite gets a client with
   Dicom.ReadWrite (registered with the `dicomite app` CLI) and a bearer token.
   Dicomite runs twice: over plain HTTP (`--http`, the peer's setting) and, as
   "dicomite-https" (unless --no-https), at its default TLS, its generated CA
   trusted by the bench's clients;
4. STOW: the corpus is split into --rounds + 1 slices of whole studies; slice 0
   is stored into both servers as the warm-up, slice N in round N, one
   multipart/related request per series (10 instances), 4 requests in flight,
   the peer first in odd rounds and Dicomite first in even rounds. Every store
   response is checked (200, every instance referenced, none failed);
5. checks that both servers now answer the same QIDO queries with the same
   number of results, return complete metadata and byte-identical studies;
6. runs --rounds rounds of QIDO (8 connections), study metadata (8) and WADO
   whole-study retrieval (4) with wrk against both servers back to back,
   alternating who goes first; whole-study WADO also against a minimal server
   that sends the stored files with sendfile and nothing else (unless
   --no-reference), a zero-copy bound with wrk on the same cores;
7. stops both servers and prints every measurement, the per-server medians and
   the ratios Dicomite/Orthanc beside their targets, over HTTP and over HTTPS,
   what HTTPS costs (dicomite-https/dicomite) and each server's WADO as a
   share of the reference's; writes
   bench/results/dicom_throughput.json.

--baseline [REF] also runs an earlier commit's code (bf0f29a by default) as one
more server in the same rounds and reports the median ratio current/baseline
per kind with its 95 % bootstrap interval (bench/README.md).

Optional modes (not run by default): --scale (100,000 small instances indexed
on SQLite and on PostgreSQL, then Orthanc with --only all: STOW's rate at the end
against the start, QIDO p50 and p99 per query kind, a mixed load with each server
process's RSS) and --big (one 1 GiB multi-frame instance stored and retrieved while
the server's RSS is sampled). Loopback only; every loop is bounded; servers
are stopped on errors, Ctrl-C and SIGTERM. Exit status 1 if any request
failed or any check did not hold.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _baseline import Baseline, add_server_arguments, ensure_baseline
from _dicom_base import (
    CACHE_DIR,
    DEFAULT_STUDIES,
    MB,
    STOW_CONCURRENCY,
    Server,
    ServerResult,
    results_file,
)
from _dicom_dicomite import DicomiteNotReadyError, start_servers
from _dicom_measure import get_workloads, run_get_rounds, run_stow_rounds, verify_server
from _dicom_modes import run_big
from _dicom_orthanc import ensure_orthanc
from _dicom_report import print_report, write_json
from _dicom_scale import add_scale_arguments, check_scale_arguments, run_scale
from _processes import BENCH_DIR, base_meta, raise_on_sigterm
from _wado_reference import start_reference
from _wrk import ensure_wrk


def ensure_pydicom() -> str:
    """pydicom generates the corpus; install it into this interpreter's venv if missing."""
    if importlib.util.find_spec("pydicom") is None:
        print("pydicom not found: installing it with pip", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "pydicom>=3,<4"], check=True)
        importlib.invalidate_caches()
    return importlib.metadata.version("pydicom")


# ----------------------------------------------------------------- main mode


def run_main(
    args: argparse.Namespace,
    meta: dict[str, Any],
    orthanc: dict[str, str] | None,
    baseline: Baseline | None,
    size: int,
) -> int:
    """The default mode on the corpus of `size` x `size` images, with fresh servers."""
    import dicom_corpus

    studies = args.studies or DEFAULT_STUDIES[size]
    print(f"\n=== corpus of {size}x{size} images ===", flush=True)
    corpus = dicom_corpus.ensure_corpus(CACHE_DIR, studies, size=size)
    print(
        f"corpus: {len(corpus.studies)} studies, {corpus.instance_count} instances,"
        f" {corpus.size / MB:.0f} MB in {corpus.folder}",
        flush=True,
    )
    meta["corpus"] = {
        **corpus.params,
        "instances": corpus.instance_count,
        "bytes": corpus.size,
        "folder": str(corpus.folder),
    }
    problems: dict[str, list[str]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="dicom-bench-") as work,
        contextlib.ExitStack() as stack,  # stops every started server, in reverse order
    ):
        servers = start_servers(
            stack, args.only, Path(work), args.workers, orthanc, baseline, args.https
        )
        results = _results(servers)
        run_stow_rounds(servers, results, corpus, args.rounds)
        if args.reference:
            processes = args.workers or len(os.sched_getaffinity(0))  # as Dicomite's workers
            servers.append(start_reference(stack, corpus, Path(work), processes))
            results |= _results(servers[-1:])
        workloads, expected = get_workloads(corpus)
        print("\nchecking QIDO results, metadata and WADO bytes on every server...", flush=True)
        for server in servers:
            server.fresh_auth()
            problems[server.name] = verify_server(server, corpus, expected)
            for p in problems[server.name][:10]:
                print(f"  {server.name}: {p}", flush=True)
            if problems[server.name]:
                results[server.name].extra["check_problems"] = problems[server.name]
            else:
                print(f"  {server.name}: OK", flush=True)
        script_dir = Path(work) / "lua"
        script_dir.mkdir()
        run_get_rounds(
            servers, results, workloads, script_dir, args.warmup, args.duration, args.rounds
        )
        meta["workloads"] = {
            w.kind: {"connections": w.connections, "accept": w.accept, "paths": len(w.paths)}
            for w in workloads
        }
        meta["workloads"]["stow"] = {
            "concurrency": STOW_CONCURRENCY,
            "instances_per_request": dicom_corpus.INSTANCES_PER_SERIES,
        }
    print(f"\n=== results, corpus of {size}x{size} images ===")
    print_report(results, args.rounds)
    write_json(results_file(size), results, meta, args.rounds)
    bad = [r.name for r in results.values() if r.errors or r.extra.get("warmup_errors")]
    bad += [name for name, found in problems.items() if found]
    if bad:
        print(f"FAILED: errors or check problems on {', '.join(sorted(set(bad)))}", file=sys.stderr)
        return 1
    return 0


def _results(servers: list[Server]) -> dict[str, ServerResult]:
    return {s.name: ServerResult(s.name, s.config, extra=dict(s.extra)) for s in servers}


# ------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="measured seconds per server, kind and round (GET kinds)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="warm-up seconds per server and GET kind (once, 0 skips it)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="measured rounds; ratios use each server's median"
    )
    parser.add_argument(
        "--corpus",
        choices=("512", "128", "both"),
        default="both",
        help="image size of the corpus: 512x512 (~0.5 MB files), 128x128 (~33 kB), or both",
    )
    parser.add_argument(
        "--studies",
        type=int,
        default=None,
        help="corpus studies, x 4 series x 10 instances (default: 90 at 512, 300 at 128)",
    )
    add_server_arguments(parser)
    parser.add_argument(
        "--https",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure Dicomite at its default HTTPS (dicomite-https) in the same rounds",
    )
    parser.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure whole-study WADO from a minimal sendfile server (the machine's bound)",
    )
    parser.add_argument(
        "--only",
        choices=("all", "peer", "dicomite"),
        default=None,
        help="servers to run (default: all; dicomite with --scale)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--scale",
        action="store_true",
        help="index --scale-instances small instances, report QIDO p50",
    )
    mode.add_argument(
        "--big",
        action="store_true",
        help="store and retrieve one --big-mib multi-frame instance, report RSS",
    )
    add_scale_arguments(parser)
    parser.add_argument("--big-mib", type=int, default=1024, help="pixel data MiB (--big)")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 600:
        parser.error("--duration must be 1..600 s and --warmup 0..600 s")
    if not 1 <= args.rounds <= 50:
        parser.error("--rounds must be 1..50")
    if args.studies is not None and not args.rounds + 1 <= args.studies <= 10_000:
        parser.error("--studies must be at least --rounds + 1 (and at most 10000)")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    check_scale_arguments(parser, args)
    if not 1 <= args.big_mib <= 3000:
        parser.error("--big-mib must be 1..3000")
    if args.only is None:
        args.only = "dicomite" if args.scale else "all"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    sys.path.insert(0, str(BENCH_DIR))  # dicom_corpus lives beside this file
    meta: dict[str, Any] = {
        **base_meta(),
        "wrk": ensure_wrk(),
        "pydicom": ensure_pydicom(),
        "config": {
            "mode": "scale" if args.scale else "big" if args.big else "throughput",
            "only": args.only,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "studies": args.studies,
            "dicomite_workers": args.workers,
            "corpus": args.corpus,
            "https": args.https,
        },
    }
    baseline = None
    if args.baseline and args.only in ("all", "dicomite"):
        baseline = ensure_baseline(args.baseline)
        meta["baseline"] = {"ref": baseline.ref, "commit": baseline.commit}
    orthanc = ensure_orthanc() if args.only in ("all", "peer") else None
    if orthanc:
        meta["orthanc"] = orthanc
        print(
            f"{orthanc['version']}, DICOMweb plugin {orthanc['dicomweb_plugin']};"
            f" {orthanc['service']}"
        )
    try:
        if args.scale:
            return run_scale(args, meta, orthanc)
        if args.big:
            return run_big(args, meta, orthanc, baseline)
        sizes = (512, 128) if args.corpus == "both" else (int(args.corpus),)
        return max(run_main(args, meta, orthanc, baseline, size) for size in sizes)
    except DicomiteNotReadyError as exc:
        print(f"\n{exc}\n(run with --only peer to measure Orthanc alone)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
