"""DICOM benchmark measurements: workloads, checks, and the alternating STOW/GET rounds."""

from __future__ import annotations

import asyncio
import hashlib
import json
import resource
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _dicom_base import (
    ACCEPT_JSON,
    ACCEPT_WADO,
    METADATA_CONNECTIONS,
    QIDO_CONNECTIONS,
    QIDO_LIMIT,
    STOW_CONCURRENCY,
    UNITS,
    WADO_CONNECTIONS,
    WRK_THREADS,
    WRK_TIMEOUT,
    Measurement,
    Server,
    ServerResult,
    http_request,
)
from _dicom_client import eof_delimited, percentile, split_multipart, stow_batches
from _processes import alternating, cpu_diff, group_cpu_seconds
from _wrk import WrkRun, run_wrk_json, write_get_script

if TYPE_CHECKING:
    from dicom_corpus import Corpus, CorpusStudy


def run_wrk(origin: str, script: Path, connections: int, seconds: float, eof: bool) -> WrkRun:
    """A write_get_script() script with this benchmark's threads and timeout."""
    return run_wrk_json(origin, script, WRK_THREADS, connections, seconds, WRK_TIMEOUT, eof)


@dataclass(frozen=True)
class GetWorkload:
    kind: str
    connections: int
    accept: str
    paths: list[str]  # relative to the DICOMweb root, starting with "/"


def query_string(params: dict[str, str | int]) -> str:
    """A query string; `*` and `^` stay literal (Orthanc does not decode %2A in queries)."""
    return urllib.parse.urlencode(params, safe="*^")


def qido_paths(corpus: Corpus) -> tuple[list[str], dict[str, int]]:
    """QIDO queries: patient name prefix, study date range, series of a study.

    Returns the paths (relative to the DICOMweb root) and the number of results
    each must return, computed from the corpus.
    """
    expected: dict[str, int] = {}
    families = sorted({s.family_name for s in corpus.studies})
    for family in families:
        # FAMILY* also matches longer names that start with it (MARTIN*: MARTINEZ too).
        count = sum(1 for s in corpus.studies if s.patient_name.startswith(family))
        query = query_string({"PatientName": f"{family}*", "limit": QIDO_LIMIT})
        expected[f"/studies?{query}"] = min(count, QIDO_LIMIT)
    for year in range(2015, 2025):
        low, high = f"{year}0101", f"{year}1231"
        count = sum(1 for s in corpus.studies if low <= s.study_date <= high)
        if count:
            query = query_string({"StudyDate": f"{low}-{high}", "limit": QIDO_LIMIT})
            expected[f"/studies?{query}"] = min(count, QIDO_LIMIT)
    for study in corpus.studies:
        expected[f"/studies/{study.study_uid}/series"] = len(study.series)
    # Interleave the three kinds so every stretch of the run mixes them.
    by_kind: list[list[str]] = [[], [], []]
    for path in expected:
        kind = 2 if "/series" in path else (1 if "StudyDate" in path else 0)
        by_kind[kind].append(path)
    mixed: list[str] = []
    longest = max(len(k) for k in by_kind)
    for i in range(longest):
        mixed.extend(k[i % len(k)] for k in by_kind if k)
    return mixed, expected


def get_workloads(corpus: Corpus) -> tuple[list[GetWorkload], dict[str, int]]:
    qido, expected = qido_paths(corpus)
    metadata = [f"/studies/{s.study_uid}/metadata" for s in corpus.studies]
    wado = [f"/studies/{s.study_uid}" for s in corpus.studies]
    return [
        GetWorkload("qido", QIDO_CONNECTIONS, ACCEPT_JSON, qido),
        GetWorkload("metadata", METADATA_CONNECTIONS, ACCEPT_JSON, metadata),
        GetWorkload("wado", WADO_CONNECTIONS, ACCEPT_WADO, wado),
    ], expected


def verify_server(
    server: Server, corpus: Corpus, expected_qido: dict[str, int], wado_studies: int = 2
) -> list[str]:
    """Same answers from every server before measuring; returns the problems found."""
    problems: list[str] = []
    headers = {**server.headers, "Accept": ACCEPT_JSON, "Accept-Encoding": "identity"}
    for path, count in expected_qido.items() if "qido" in server.kinds else ():
        status, _, body = http_request("GET", server.base + path, headers)
        got = len(json.loads(body)) if status == 200 and body else 0
        if status != 200 or got != count:
            problems.append(f"QIDO {path}: HTTP {status}, {got} results, expected {count}")
    for study in corpus.studies if "metadata" in server.kinds else ():
        path = f"/studies/{study.study_uid}/metadata"
        status, _, body = http_request("GET", server.base + path, headers)
        items = json.loads(body) if status == 200 else []
        sops = {i.get("00080018", {}).get("Value", [None])[0] for i in items}
        wanted = {i.sop_uid for r in study.series for i in r.instances}
        if status != 200 or sops != wanted:
            problems.append(f"metadata {path}: HTTP {status}, {len(items)} instances")
        elif any("InlineBinary" in i.get("7FE00010", {}) for i in items):
            problems.append(f"metadata {path}: pixel data inline (not as BulkDataURI)")
    picks = corpus.studies[:1] + corpus.studies[-1:] if wado_studies > 1 else corpus.studies[:1]
    for study in picks if "wado" in server.kinds else ():
        problems += _verify_wado(server, corpus, study)
    return problems


def _verify_wado(server: Server, corpus: Corpus, study: CorpusStudy) -> list[str]:
    """The whole study, its parts byte-identical to the stored files."""
    headers = {**server.headers, "Accept": ACCEPT_WADO, "Accept-Encoding": "identity"}
    path = f"/studies/{study.study_uid}"
    status, resp_headers, body = http_request("GET", server.base + path, headers)
    content_type = next((v for k, v in resp_headers.items() if k.lower() == "content-type"), "")
    if status != 200:
        return [f"WADO {path}: HTTP {status}"]
    got_hashes = sorted(hashlib.sha256(p).hexdigest() for p in split_multipart(content_type, body))
    want_hashes = sorted(
        hashlib.sha256(corpus.read(i)).hexdigest() for r in study.series for i in r.instances
    )
    if got_hashes != want_hashes:
        return [
            f"WADO {path}: {len(got_hashes)} parts, not byte-identical to the"
            f" {len(want_hashes)} stored files"
        ]
    return []


# ---------------------------------------------------------------------- running


def _cpu_others(others: Sequence[Server]) -> list[float | None]:
    return [group_cpu_seconds(o.proc.pid) for o in others]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_get(
    server: Server,
    others: Sequence[Server],
    workload: GetWorkload,
    scripts: dict[tuple[str, str], Path],
    eof: dict[tuple[str, str], bool],
    seconds: float,
    number: int,
    position: int,
) -> Measurement:
    before_self = group_cpu_seconds(server.proc.pid)
    before_others = _cpu_others(others)
    before_client = _children_cpu()
    key = (server.name, workload.kind)
    run = run_wrk(server.origin, scripts[key], workload.connections, seconds, eof[key])
    client = _children_cpu() - before_client
    after_self = group_cpu_seconds(server.proc.pid)
    idle = cpu_diff(before_others, _cpu_others(others))
    for s in (server, *others):
        s.check_alive()
    return Measurement(
        kind=workload.kind,
        round=number,
        position=position,
        requests=run.requests,
        elapsed_s=run.elapsed_s,
        bytes=run.bytes,
        instances=0,
        p50_ms=run.p50_ms,
        p99_ms=run.p99_ms,
        errors=run.errors,
        server_cpu_s=cpu_diff([before_self], [after_self]),
        client_cpu_s=client,
        idle_others_cpu_s=idle,
        closes_not_counted=run.closes_not_counted,
    )


def measure_stow(
    server: Server,
    others: Sequence[Server],
    corpus: Corpus,
    studies: Sequence[CorpusStudy],
    number: int,
    position: int,
) -> Measurement:
    batches = [
        (lambda series=series: [corpus.read(i) for i in series.instances])
        for study in studies
        for series in study.series
    ]
    server.fresh_auth()
    before: dict[str, Any] = {}

    def clock_starts() -> None:  # the request bodies are built by then
        before.update(server=group_cpu_seconds(server.proc.pid), others=_cpu_others(others))
        before["client"] = _self_cpu()

    stats, elapsed = asyncio.run(
        stow_batches(server, batches, STOW_CONCURRENCY, build_first=True, on_start=clock_starts)
    )
    client = _self_cpu() - before["client"]
    after_self = group_cpu_seconds(server.proc.pid)
    idle = cpu_diff(before["others"], _cpu_others(others))
    before_self = before["server"]
    for s in (server, *others):
        s.check_alive()
    if stats.first_error:
        print(f"  {server.name}: STOW failure: {stats.first_error}", flush=True)
    return Measurement(
        kind="stow",
        round=number,
        position=position,
        requests=stats.requests,
        elapsed_s=elapsed,
        bytes=stats.bytes,
        instances=stats.instances,
        p50_ms=percentile(stats.latencies_ms, 50),
        p99_ms=percentile(stats.latencies_ms, 99),
        errors=stats.failed_instances,
        server_cpu_s=cpu_diff([before_self], [after_self]),
        client_cpu_s=client,
        idle_others_cpu_s=idle,
    )


def _describe(m: Measurement) -> str:
    cpu = ""
    if m.server_cpu_s is not None and m.elapsed_s:
        cpu = f"  server cpu {100 * m.server_cpu_s / m.elapsed_s:.0f}%"
    if m.client_cpu_s is not None and m.elapsed_s:
        cpu += f" client {100 * m.client_cpu_s / m.elapsed_s:.0f}%"
    extra = f"  ({m.mb_per_s:.1f} MB/s)" if m.kind == "stow" else ""
    return (
        f"{m.value:9.1f} {UNITS[m.kind]:<12} p50 {m.p50_ms:8.2f} ms  p99 {m.p99_ms:8.2f} ms"
        f"  errors {m.errors}{extra}{cpu}"
    )


def slices(items: Sequence[Any], count: int) -> list[list[Any]]:
    """`items` cut into `count` contiguous slices of (nearly) equal size."""
    return [
        list(items[i * len(items) // count : (i + 1) * len(items) // count]) for i in range(count)
    ]


def run_stow_rounds(
    servers: list[Server], results: dict[str, ServerResult], corpus: Corpus, rounds: int
) -> None:
    parts = slices(corpus.studies, rounds + 1)
    print(
        f"\nSTOW: {len(parts[0])} studies as warm-up, then {rounds} round(s) of"
        f" ~{len(parts[1])} studies each; one request per series, {STOW_CONCURRENCY} in flight",
        flush=True,
    )
    for number in range(0, rounds + 1):
        order = alternating(servers, number) if number else servers
        label = "warm-up" if number == 0 else f"round {number}/{rounds}"
        print(f"STOW {label}: {' then '.join(s.name for s in order)}", flush=True)
        for position, server in enumerate(order, start=1):
            others = [o for o in servers if o is not server]
            m = measure_stow(server, others, corpus, parts[number], number, position)
            print(f"  {server.name:<18} {_describe(m)}", flush=True)
            if number == 0:
                if m.errors:  # the warm-up is not measured, but its data must be there
                    results[server.name].extra.setdefault("warmup_errors", 0)
                    results[server.name].extra["warmup_errors"] += m.errors
            else:
                results[server.name].measurements.append(m)


def _answered(workloads: list[GetWorkload], server: Server) -> list[GetWorkload]:
    return [w for w in workloads if w.kind in server.kinds]


def _answering(servers: Sequence[Server], kind: str) -> list[Server]:
    """The servers measured on `kind`, in the order given."""
    return [s for s in servers if kind in s.kinds]


def run_get_rounds(
    servers: list[Server],
    results: dict[str, ServerResult],
    workloads: list[GetWorkload],
    script_dir: Path,
    warmup_s: float,
    duration_s: float,
    rounds: int,
) -> None:
    scripts: dict[tuple[str, str], Path] = {}
    eof: dict[tuple[str, str], bool] = {}
    for server in servers:
        server.fresh_auth()
        headers = {**server.headers, "Accept-Encoding": "identity"}
        for w in _answered(workloads, server):
            eof[(server.name, w.kind)] = eof_delimited(server, w.paths[0], w.accept)
            if eof[(server.name, w.kind)]:
                print(
                    f"note: {server.name} ends {w.kind} responses by closing the connection;"
                    " wrk's read error on each such close is not counted as an error",
                    flush=True,
                )
            scripts[(server.name, w.kind)] = write_get_script(
                script_dir / f"{server.name}-{w.kind}.lua",
                [server.root + p for p in w.paths],
                {**headers, "Accept": w.accept},
            )
    if warmup_s > 0:
        for w in workloads:
            for server in _answering(servers, w.kind):
                print(f"warm-up {w.kind} {server.name} {warmup_s:.0f} s", flush=True)
                key = (server.name, w.kind)
                run_wrk(server.origin, scripts[key], w.connections, warmup_s, eof[key])
                server.check_alive()
    for number in range(1, rounds + 1):
        order = alternating(servers, number)
        print(f"\nround {number}/{rounds}: {' then '.join(s.name for s in order)}", flush=True)
        for w in workloads:
            for position, server in enumerate(_answering(order, w.kind), start=1):
                others = [o for o in servers if o is not server]
                m = measure_get(server, others, w, scripts, eof, duration_s, number, position)
                results[server.name].measurements.append(m)
                print(f"  {w.kind:<9} {server.name:<18} {_describe(m)}", flush=True)
