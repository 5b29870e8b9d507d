"""STOW throughput alone and under a wrong-password flood of the portal sign-in, side by side.

Run from the repository root:  .venv/bin/python bench/signin_flood.py

What it does, per flood kind (--flood, default both):
1. starts `dicomite serve --http` on a free loopback port at its default settings (SQLite,
   folder blob store, default worker count); for the `spread` flood also with
   `--forwarded-allow-ips 127.0.0.1`, so the flood can claim a new address per attempt;
2. a warm-up STOW phase (discarded), then --rounds rounds of two phases each, `alone` and
   `flood`, the order alternating between rounds: each phase stores new small instances
   (16x16 CT, 10 per request, 4 requests in flight, every response checked) for --duration
   seconds;
3. during a `flood` phase, the same client also posts wrong-password sign-ins to
   /portal/signin at --rate per second (with a valid sign-in CSRF token and cookie, so each
   one reaches the password check unless it is throttled):
   - `one-address`: every attempt from 127.0.0.1 for a new unknown name (per-name throttling
     alone would never stop it; the per-address limit does);
   - `spread`: every attempt for a new name from a new X-Forwarded-For address, so nothing is
     throttled and every attempt costs the server a password hash;
4. prints each phase (STOW requests/s, instances/s, sign-in answers by status), the medians
   and the ratio flood/alone of STOW instances/s (target >= 0.5), and writes
   bench/results/signin_flood.json.

Loopback only; every phase is bounded in time; the server is stopped on errors, Ctrl-C and
SIGTERM. Exit status 1 if a STOW instance failed or a sign-in got an answer other than
401 (wrong password), 429 (throttled) or 503 (too many sign-ins waiting for a password check).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dicom_corpus
from _dicom_base import ACCEPT_JSON, STOW_CONCURRENCY, Server, http_request
from _dicom_client import PlainConnection, multipart_body, percentile, stow_failures
from _dicom_dicomite import start_dicomite
from _processes import HOST, RESULTS_DIR, alternating, base_meta, raise_on_sigterm
from _report import format_spread, ratio, write_results
from dicom_throughput import ensure_pydicom

RESULTS_FILE = RESULTS_DIR / "signin_flood.json"
FLOODS = ("one-address", "spread")
TARGET_RATIO = 0.5
# wrong password, throttled, or refused while too many sign-ins wait for a password check
EXPECTED = (401, 429, 503)
INSTANCES_PER_REQUEST = 10
MAX_SIGN_INS_IN_FLIGHT = 64
WRONG_PASSWORD = "Not-the-passw0rd"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
COOKIE = re.compile(r"(dicomite-signin-csrf)=([^;]+)")


@dataclass
class FloodStats:
    """The sign-ins sent during one phase, by the status they got."""

    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # no answer (connection error, timeout)
    skipped: int = 0  # not sent: MAX_SIGN_INS_IN_FLIGHT were still waiting
    p50_ms: float = 0.0


@dataclass
class Phase:
    """One measured phase: STOW for a while, with or without the flood."""

    kind: str  # warm-up | alone | flood
    round: int
    elapsed_s: float = 0.0
    requests: int = 0
    instances: int = 0
    failed_instances: int = 0
    stow_p50_ms: float = 0.0
    flood: FloodStats | None = None

    @property
    def instances_per_s(self) -> float:
        return self.instances / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0


# ------------------------------------------------------------------------ the load


def new_instances(seed: int) -> Iterator[list[bytes]]:
    """Request after request of new small instances (the seed makes their UIDs unique)."""
    for study in dicom_corpus.small_studies(1_000_000, 1, INSTANCES_PER_REQUEST, seed=seed):
        yield study.instances


async def stow_until(
    phase: Phase, server: Server, deadline: float, batches: Iterator[list[bytes]]
) -> None:
    """STOW requests, STOW_CONCURRENCY in flight, until `deadline` (loop time)."""
    loop, latencies = asyncio.get_running_loop(), []
    boundary = "signin-flood-" + secrets.token_hex(8)
    url = urllib.parse.urlsplit(server.base)
    headers = {
        **server.headers,
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": ACCEPT_JSON,
    }

    async def worker() -> None:
        connection = PlainConnection(HOST, url.port or 80)
        try:
            while loop.time() < deadline:
                parts = next(batches)
                started = loop.time()
                status, payload = await connection.post(
                    f"{url.path}/studies", headers, multipart_body(parts, boundary)
                )
                latencies.append((loop.time() - started) * 1000)
                failed = stow_failures(status, payload, len(parts))
                phase.requests += 1
                phase.instances += len(parts) - failed
                phase.failed_instances += failed
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(STOW_CONCURRENCY)))
    phase.stow_p50_ms = percentile(latencies, 50)


@dataclass
class SignInForm:
    """A sign-in form's CSRF token and cookie: the pair stays valid for every post."""

    token: str
    cookie: str

    @classmethod
    def fetch(cls, origin: str) -> SignInForm:
        status, headers, body = http_request("GET", f"{origin}/portal/signin")
        token = TOKEN.search(body.decode())
        cookie = COOKIE.search(
            next((v for k, v in headers.items() if k.lower() == "set-cookie"), "")
        )
        if status != 200 or token is None or cookie is None:
            raise RuntimeError(f"no sign-in form at {origin}/portal/signin: HTTP {status}")
        return cls(token[1], f"{cookie[1]}={cookie[2]}")


async def flood_until(
    stats: FloodStats, origin: str, deadline: float, flood: Flood, start_at: int
) -> None:
    """Wrong-password sign-ins at `flood.rate` per second until `deadline` (loop time)."""
    loop, form = asyncio.get_running_loop(), SignInForm.fetch(origin)
    idle: list[PlainConnection] = []
    running: set[asyncio.Task[None]] = set()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    port = urllib.parse.urlsplit(origin).port or 80

    async def attempt(number: int) -> None:
        fields = {"csrf_token": form.token, "username": f"flood-{number}@nowhere.example"}
        fields |= {"password": WRONG_PASSWORD, "next": ""}
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": form.cookie}
        if flood.spread:  # a new address per attempt (10.0.0.0/8, through the trusted 127.0.0.1)
            headers["X-Forwarded-For"] = (
                f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"
            )
        body, started = urllib.parse.urlencode(fields).encode(), loop.time()
        # A kept-alive connection may have been closed by the server while idle (its
        # keep-alive timeout): such a one is retried once on a new connection.
        for connection in (idle.pop() if idle else None, PlainConnection(HOST, port)):
            if connection is None:
                continue
            try:
                status, _ = await connection.post("/portal/signin", headers, body)
            except OSError:  # TimeoutError and ConnectionError among them
                connection.close()
                continue
            latencies.append((loop.time() - started) * 1000)
            statuses[status] += 1
            idle.append(connection)
            return
        stats.errors += 1

    sent, started = 0, loop.time()
    while loop.time() < deadline:
        await asyncio.sleep(max(0.0, started + sent / flood.rate - loop.time()))
        sent += 1
        if len(running) >= MAX_SIGN_INS_IN_FLIGHT:
            stats.skipped += 1
            continue
        task = asyncio.create_task(attempt(start_at + sent))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
    for connection in idle:
        connection.close()
    stats.statuses = dict(sorted(statuses.items()))
    stats.p50_ms = percentile(latencies, 50)


async def run_phase(
    server: Server, kind: str, number: int, seconds: float, seed: int, flood: Flood | None
) -> Phase:
    phase = Phase(kind, number)
    deadline = asyncio.get_running_loop().time() + seconds
    started = time.perf_counter()
    work = [stow_until(phase, server, deadline, new_instances(seed))]
    if flood is not None:
        phase.flood = FloodStats()
        first = flood.next_number(seconds)
        work.append(flood_until(phase.flood, server.origin, deadline, flood, first))
    await asyncio.gather(*work)
    phase.elapsed_s = time.perf_counter() - started
    server.check_alive()
    return phase


@dataclass
class Flood:
    name: str
    rate: float
    numbers_used: int = 0

    @property
    def spread(self) -> bool:
        return self.name == "spread"

    def next_number(self, seconds: float) -> int:
        """Where this phase's attempt numbers start (names and addresses never repeat)."""
        first = self.numbers_used
        self.numbers_used += int(seconds * self.rate) + MAX_SIGN_INS_IN_FLIGHT + 1
        return first


# ------------------------------------------------------------------------- rounds


def measure(flood: Flood, args: argparse.Namespace, work: Path) -> list[Phase]:
    extra = ["--forwarded-allow-ips", "127.0.0.1"] if flood.spread else []
    phases: list[Phase] = []
    with contextlib.ExitStack() as stack:
        server = start_dicomite(stack, work / flood.name, args.workers, extra)
        seeds = iter(range(dicomite_seed(flood), dicomite_seed(flood) + 1000))
        print(f"\n[{flood.name}] warm-up: {args.warmup:.0f} s of STOW", flush=True)
        asyncio.run(run_phase(server, "warm-up", 0, args.warmup, next(seeds), None))
        for number in range(1, args.rounds + 1):
            for kind in alternating(["alone", "flood"], number):
                server.fresh_auth()
                floods = flood if kind == "flood" else None
                phase = asyncio.run(
                    run_phase(server, kind, number, args.duration, next(seeds), floods)
                )
                print_phase(flood.name, phase)
                phases.append(phase)
    return phases


def dicomite_seed(flood: Flood) -> int:
    """Each run stores instances no earlier run stored (a fresh data folder anyway)."""
    return dicom_corpus.DEFAULT_SEED + 10_000 * FLOODS.index(flood.name)


# ------------------------------------------------------------------------- report


def print_phase(flood: str, phase: Phase) -> None:
    line = (
        f"  [{flood}] round {phase.round} {phase.kind:<5}: STOW {phase.instances_per_s:7.1f}"
        f" instances/s ({phase.requests_per_s:5.1f} requests/s, p50 {phase.stow_p50_ms:.0f} ms,"
        f" {phase.failed_instances} failed)"
    )
    if phase.flood is not None:
        sent = sum(phase.flood.statuses.values())
        answers = ", ".join(f"{s}: {n}" for s, n in phase.flood.statuses.items()) or "none"
        line += (
            f"  sign-ins {sent / phase.elapsed_s:5.1f}/s ({answers}; errors {phase.flood.errors},"
            f" skipped {phase.flood.skipped}, p50 {phase.flood.p50_ms:.0f} ms)"
        )
    print(line, flush=True)


def median_of(phases: list[Phase], kind: str) -> float | None:
    values = [p.instances_per_s for p in phases if p.kind == kind]
    return statistics.median(values) if values else None


def summary(flood: str, phases: list[Phase], rounds: int) -> dict[str, Any]:
    alone, flooded = median_of(phases, "alone"), median_of(phases, "flood")
    per_round = [
        ratio(
            next(p.instances_per_s for p in phases if p.round == n and p.kind == "flood"),
            next(p.instances_per_s for p in phases if p.round == n and p.kind == "alone"),
        )
        for n in range(1, rounds + 1)
    ]
    result = ratio(flooded, alone)
    print(
        f"\n[{flood}] STOW median alone {alone or 0:.1f} instances/s, under the flood"
        f" {flooded or 0:.1f} instances/s: ratio {result or 0:.2f} (target >= {TARGET_RATIO});"
        f" per round {format_spread(per_round)}"
    )
    return {
        "flood": flood,
        "median_alone_instances_per_s": alone,
        "median_flood_instances_per_s": flooded,
        "ratio": result,
        "round_ratios": per_round,
        "target": TARGET_RATIO,
        "met": result is not None and result >= TARGET_RATIO,
        "phases": [asdict(p) for p in phases],
    }


def bad_answers(phases: list[Phase]) -> int:
    failed = sum(p.failed_instances for p in phases)
    floods = [p.flood for p in phases if p.flood is not None]
    odd = sum(n for f in floods for status, n in f.statuses.items() if status not in EXPECTED)
    return failed + odd + sum(f.errors for f in floods)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--flood", choices=(*FLOODS, "both"), default="both")
    parser.add_argument("--rate", type=float, default=30.0, help="sign-ins per second")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per server")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of alone + flood")
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: the server's)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600 or not 1 <= args.warmup <= 600:
        parser.error("--duration and --warmup must be 1..600 s")
    if not 1 <= args.rounds <= 20 or not 0.1 <= args.rate <= 500:
        parser.error("--rounds must be 1..20 and --rate 0.1..500")
    if args.workers is not None and not 1 <= args.workers <= 64:
        parser.error("--workers must be 1..64")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    meta: dict[str, Any] = {
        **base_meta(),
        "pydicom": ensure_pydicom(),
        "config": vars(args) | {"stow_concurrency": STOW_CONCURRENCY},
    }
    floods = FLOODS if args.flood == "both" else (args.flood,)
    results = []
    with tempfile.TemporaryDirectory(prefix="signin-flood-") as work:
        for name in floods:
            phases = measure(Flood(name, args.rate), args, Path(work))
            results.append((name, phases))
    print()
    summaries = [summary(name, phases, args.rounds) for name, phases in results]
    write_results(RESULTS_FILE, {**meta, "floods": summaries})
    bad = sum(bad_answers(phases) for _, phases in results)
    if bad:
        print(f"FAILED: {bad} failed STOW instances or unexpected sign-in answers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
