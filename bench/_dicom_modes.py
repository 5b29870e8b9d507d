"""The optional --big DICOM benchmark mode: one huge multi-frame instance, server RSS
sampled (--scale lives in _dicom_scale.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _baseline import Baseline
from _dicom_base import (
    ACCEPT_JSON,
    ACCEPT_WADO,
    BIG_RESULTS_FILE,
    BIG_TARGET_RSS_GROWTH_MB,
    CACHE_DIR,
    MB,
    Server,
    http_request,
)
from _dicom_client import stow_failures
from _dicom_dicomite import start_servers
from _processes import group_pids, group_rss_bytes, reset_peak_rss
from _report import write_results

if TYPE_CHECKING:
    from dicom_corpus import BigInstance

# ------------------------------------------------------------------- --big mode


class RssSampler:
    """The peak summed RSS of a process group over a block: the larger of the summed VmHWM
    (each process's peak, reset on entry with clear_refs, as tests/dicom/retrieve/
    test_frames.py does; a sum of peaks, never below the peak of the sum) and the summed
    VmRSS sampled every `interval` seconds in a thread (which also sees late workers)."""

    def __init__(self, pgid: int, interval: float = 0.05) -> None:
        self.pgid, self.interval = pgid, interval
        self.peak = 0
        self.hwm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids, refreshed = group_pids(self.pgid), time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - refreshed > 1.0:  # workers may come and go
                pids, refreshed = group_pids(self.pgid), time.monotonic()
            self.peak = max(self.peak, group_rss_bytes(pids))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        reset_peak_rss(group_pids(self.pgid))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.hwm = group_rss_bytes(group_pids(self.pgid), "VmHWM")
        self.peak = max(self.peak, self.hwm)


class PartHasher:
    """SHA-256 of the first part of a streamed multipart body, without buffering it."""

    def __init__(self, content_type: str) -> None:
        match = re.search(r'boundary="?([^";]+)"?', content_type)
        if match is None:
            raise ValueError(f"no boundary in {content_type!r}")
        self.delimiter = b"\r\n--" + match[1].encode()
        self.head = b"\r\n"  # so the first delimiter also starts with CRLF
        self.in_part = False
        self.tail = b""
        self.digest = hashlib.sha256()
        self.size = 0
        self.keep = len(self.delimiter) + 8

    def feed(self, chunk: bytes) -> None:
        if not self.in_part:
            self.head += chunk
            start = self.head.find(self.delimiter)
            end = self.head.find(b"\r\n\r\n", start + 1) if start >= 0 else -1
            if end < 0:
                if len(self.head) > 1 << 16:
                    raise ValueError("no part header in the first 64 KiB")
                return
            self.in_part, chunk, self.head = True, self.head[end + 4 :], b""
        data = self.tail + chunk
        # Hold back enough bytes to recognise the closing delimiter at the end.
        cut = max(0, len(data) - self.keep)
        stop = data.find(self.delimiter, 0)
        if stop >= 0:
            cut = stop
        self.digest.update(data[:cut])
        self.size += cut
        self.tail = data[cut:]

    def finish(self) -> tuple[str, int]:
        stop = self.tail.find(self.delimiter)
        rest = self.tail if stop < 0 else self.tail[:stop]
        self.digest.update(rest)
        self.tail = b""
        return self.digest.hexdigest(), self.size + len(rest)


async def big_store(server: Server, big: BigInstance) -> tuple[int, bytes, float]:
    import aiohttp

    headers = {
        **server.headers,
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={big.boundary}',
        "Accept": ACCEPT_JSON,
        "Accept-Encoding": "identity",  # Orthanc gzips JSON answers otherwise
    }
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=1800)
    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        with big.body_path.open("rb") as body:  # streamed with a Content-Length
            async with session.post(f"{server.base}/studies", data=body, headers=headers) as resp:
                return resp.status, await resp.read(), time.perf_counter() - started


async def big_retrieve(server: Server, big: BigInstance) -> tuple[int, str, int, int, float]:
    """GET the study as multipart; return status, part SHA-256, part size, bytes, seconds."""
    import aiohttp

    headers = {**server.headers, "Accept": ACCEPT_WADO, "Accept-Encoding": "identity"}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=1800)
    started = time.perf_counter()
    async with (
        aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session,
        session.get(f"{server.base}/studies/{big.study_uid}", headers=headers) as resp,
    ):
        if resp.status != 200:
            await resp.read()
            return resp.status, "", 0, 0, time.perf_counter() - started
        hasher = PartHasher(resp.headers.get("Content-Type", ""))
        total = 0
        async for chunk in resp.content.iter_chunked(1 << 20):
            total += len(chunk)
            hasher.feed(chunk)
        digest, size = hasher.finish()
        return resp.status, digest, size, total, time.perf_counter() - started


def run_big(
    args: argparse.Namespace,
    meta: dict[str, Any],
    orthanc: dict[str, str] | None,
    baseline: Baseline | None = None,
) -> int:
    import dicom_corpus

    big = dicom_corpus.ensure_big_instance(CACHE_DIR, args.big_mib * 2)
    print(f"big instance: {big.frames} frames, {big.dicom_size / MB:.0f} MB, {big.body_path}")
    out: dict[str, Any] = {
        **meta,
        "big": {"frames": big.frames, "dicom_bytes": big.dicom_size, "servers": []},
    }
    failed = False
    with (
        tempfile.TemporaryDirectory(prefix="dicom-bench-big-") as work,
        contextlib.ExitStack() as stack,
    ):
        servers = start_servers(stack, args.only, Path(work), args.workers, orthanc, baseline)
        for server in servers:
            server.fresh_auth()
            # One small request first, so lazily loaded code is in the baseline.
            http_request(
                "GET", f"{server.base}/studies?limit=1", {**server.headers, "Accept": ACCEPT_JSON}
            )
            time.sleep(1.0)
            rss_before = group_rss_bytes(group_pids(server.proc.pid))
            print(f"\n[{server.name}] RSS before: {rss_before / MB:.0f} MB; storing...", flush=True)
            with RssSampler(server.proc.pid) as store_rss:
                status, body, store_s = asyncio.run(big_store(server, big))
            stored = stow_failures(status, body, 1) == 0
            print(
                f"[{server.name}] STOW -> HTTP {status} in {store_s:.1f} s"
                f" ({big.dicom_size / MB / store_s:.0f} MB/s); peak RSS"
                f" +{(store_rss.peak - rss_before) / MB:.0f} MB",
                flush=True,
            )
            if not stored:
                print(f"  response: {body[:400]!r}")
            server.fresh_auth()
            after_store = group_rss_bytes(group_pids(server.proc.pid))
            with RssSampler(server.proc.pid) as get_rss:
                get_status, digest, size, total, get_s = asyncio.run(big_retrieve(server, big))
            identical = digest == big.dicom_sha256 and size == big.dicom_size
            print(
                f"[{server.name}] WADO -> HTTP {get_status} in {get_s:.1f} s"
                f" ({total / MB / get_s:.0f} MB/s), byte-identical: {identical}; peak RSS"
                f" +{(get_rss.peak - rss_before) / MB:.0f} MB",
                flush=True,
            )
            server.check_alive()
            growth = max(store_rss.peak, get_rss.peak) - rss_before
            entry = {
                "name": server.name,
                "config": server.config,
                "rss_baseline_bytes": rss_before,
                "rss_after_store_bytes": after_store,
                "store": {
                    "status": status,
                    "ok": stored,
                    "seconds": store_s,
                    "peak_rss_growth_bytes": store_rss.peak - rss_before,
                },
                "retrieve": {
                    "status": get_status,
                    "byte_identical": identical,
                    "seconds": get_s,
                    "response_bytes": total,
                    "peak_rss_growth_bytes": get_rss.peak - rss_before,
                },
                "peak_rss_growth_mb": growth / MB,
                "target_met": stored and identical and growth / MB <= BIG_TARGET_RSS_GROWTH_MB,
            }
            print(
                f"[{server.name}] peak RSS growth {growth / MB:.0f} MB (target <="
                f" {BIG_TARGET_RSS_GROWTH_MB:.0f} MB:"
                f" {'met' if entry['target_met'] else 'MISSED'})",
                flush=True,
            )
            failed |= not (stored and identical)
            out["big"]["servers"].append(entry)
    write_results(BIG_RESULTS_FILE, out)
    return 1 if failed else 0


# ------------------------------------------------------------------------ main
