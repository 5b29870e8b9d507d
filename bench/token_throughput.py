"""OAuth2 client-credentials token throughput: Dicomite vs node oidc-provider 9.

Run from the repository root:  .venv/bin/python bench/token_throughput.py

What it does, in order:
1. makes sure `wrk` (apt) and the peer's npm dependencies are installed;
2. measures the machine's RS256 signing ceiling with `cryptography`
   (2048-bit RSA, 1 process and 2 processes);
3. starts both servers once (each in its own process group, on a free
   loopback port), checks one token request per server returns an RS256 JWT
   and runs one wrk warm-up per server;
4. runs --rounds measured rounds; each round measures both servers back to
   back (POST form body, 2 threads, 8 connections, `--latency`), the peer
   first in odd rounds and Dicomite first in even rounds, so slow drift of
   the machine hits both alike;
5. stops both servers, prints every round and the per-server medians, the
   Dicomite/peer ratio of the median tokens/s, and writes
   bench/results/token_throughput.json.

Besides the default Dicomite (no --workers: one worker per usable core), tokens/s
per core are measured (--no-per-core skips it): a one-worker Dicomite and a second
node process, each pinned to the first usable CPU with wrk pinned to the others
(unpinned, node's one process signs on its thread pool, on more than one core:
the `cores` column shows it). --baseline [REF] adds an earlier commit's code,
compared as the median per-round ratio with its 95 % bootstrap interval.

Only one server is under load at a time; the others sit idle meanwhile.
The CPU time the measured server uses is recorded, and so is the idle servers'
(it is ~0), so the assumption that an idle server costs nothing is checked
every run.
Exit status is non-zero if any server answered with a non-2xx status or wrk
saw socket errors in any measured round.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _baseline import add_server_arguments, ensure_baseline
from _processes import (
    RESULTS_DIR,
    alternating,
    base_meta,
    cpu_diff,
    group_cpu_seconds,
    raise_on_sigterm,
    running_process,
    wait_ready,
)
from _token_report import print_report, write_json
from _token_setup import (
    READY_TIMEOUT_S,
    STOP_GRACE_S,
    WRK_CONNECTIONS,
    WRK_THREADS,
    Measurement,
    ServerResult,
    Target,
    build_targets,
    ensure_peer_deps,
    measure_signing_ceiling,
    node_version,
)
from _wrk import WrkResult, ensure_wrk, lua_string, parse_wrk, run_wrk_latency

# ------------------------------------------------------------ process management


@contextlib.contextmanager
def running_server(target: Target, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own process group; always stop it on the way out."""
    with running_process(
        target.command, target.env, log_path, cwd=target.cwd, grace_s=STOP_GRACE_S
    ) as proc:
        yield proc


# ------------------------------------------------------------------ token checks


def request_token(target: Target) -> dict[str, Any]:
    body = urllib.parse.urlencode(target.form).encode()
    req = urllib.request.Request(
        target.token_url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            payload: dict[str, Any] = json.loads(resp.read())
            return payload
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise RuntimeError(f"{target.name}: token request failed: {exc.code} {detail}") from exc


def _b64url_json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)  # JWTs strip base64 padding
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def check_jwt_token(target: Target) -> dict[str, Any]:
    """One real token request before load: it must be a 3-part RS256 JWT."""
    token = request_token(target).get("access_token")
    if not isinstance(token, str) or len(token.split(".")) != 3:
        raise RuntimeError(f"{target.name}: access_token is not a JWT: {token!r:.80}")
    header = _b64url_json(token.split(".")[0])
    if header.get("alg") != "RS256":
        raise RuntimeError(f"{target.name}: JWT alg is {header.get('alg')!r}, expected RS256")
    claims = _b64url_json(token.split(".")[1])
    return {"jwt_header": header, "jwt_aud": claims.get("aud"), "jwt_bytes": len(token)}


# --------------------------------------------------------------------------- wrk


def write_lua_script(form: dict[str, str], directory: Path) -> Path:
    """The same request shape for every server: a form-encoded POST, only the body differs."""
    body = urllib.parse.urlencode(form)
    script = directory / "token_request.lua"
    script.write_text(
        "-- generated by bench/token_throughput.py\n"
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f"wrk.body = {lua_string(body)}\n"
    )
    return script


def run_wrk(target: Target, script: Path, seconds: float) -> str:
    return run_wrk_latency(
        target.token_url, script, WRK_THREADS, WRK_CONNECTIONS, seconds, target.load_cpus
    )


# ---------------------------------------------------------------------- running


@dataclass
class LiveServer:
    """A started, verified server and what is needed to load it."""

    target: Target
    proc: subprocess.Popen[bytes]
    log_path: Path
    script: Path
    result: ServerResult

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.target.name} exited with {self.proc.returncode}; see {self.log_path}"
            )


def start_servers(
    stack: contextlib.ExitStack, targets: list[Target], script_dir: Path
) -> list[LiveServer]:
    """Start every target (each in its own process group), wait until ready, verify a token.

    The servers are registered on `stack`, so they are stopped however we leave it.
    """
    started: list[tuple[Target, subprocess.Popen[bytes], Path]] = []
    for target in targets:
        log_path = RESULTS_DIR / f"{target.name}.log"
        print(f"\n[{target.name}] {target.config}", flush=True)
        print(f"  starting: {' '.join(target.command)}  (log: {log_path})", flush=True)
        proc = stack.enter_context(running_server(target, log_path))
        started.append((target, proc, log_path))
    live = []
    for target, proc, log_path in started:  # they boot in parallel; wait for each
        wait_ready(proc, target.ready_url, log_path, READY_TIMEOUT_S)
        jwt_info = check_jwt_token(target)
        print(
            f"[{target.name}] ready, token OK: JWT {jwt_info['jwt_header']},"
            f" aud={jwt_info['jwt_aud']}",
            flush=True,
        )
        (script_dir / target.name).mkdir()
        script = write_lua_script(target.form, script_dir / target.name)
        live.append(
            LiveServer(
                target,
                proc,
                log_path,
                script,
                ServerResult(target.name, target.config, extra=jwt_info),
            )
        )
    return live


def measure(
    server: LiveServer, others: list[LiveServer], seconds: float
) -> tuple[WrkResult, float | None, float | None]:
    """One wrk run against `server`; also the CPU seconds `server` used, and those the idle
    `others` used meanwhile."""
    before = [group_cpu_seconds(s.proc.pid) for s in (server, *others)]
    result = parse_wrk(run_wrk(server.target, server.script, seconds))
    after = [group_cpu_seconds(s.proc.pid) for s in (server, *others)]
    for live in (server, *others):
        live.check_alive()
    return result, cpu_diff(before[:1], after[:1]), cpu_diff(before[1:], after[1:])


def run_rounds(live: list[LiveServer], warmup_s: float, duration_s: float, rounds: int) -> None:
    """One warm-up per server, then `rounds` rounds measuring every server back to back."""
    if warmup_s > 0:
        for server in live:
            print(f"\n[{server.target.name}] warm-up {warmup_s:.0f} s...", flush=True)
            run_wrk(server.target, server.script, warmup_s)
            server.check_alive()
    for number in range(1, rounds + 1):
        # Odd rounds: the order given (peer first); even rounds: reversed.
        order = alternating(live, number)
        print(
            f"\nround {number}/{rounds}: {' then '.join(s.target.name for s in order)}", flush=True
        )
        for position, server in enumerate(order, start=1):
            others = [o for o in live if o is not server]
            wrk, server_cpu, idle_cpu = measure(server, others, duration_s)
            measurement = Measurement(number, position, wrk, idle_cpu, server_cpu)
            server.result.measurements.append(measurement)
            idle = (
                ""
                if idle_cpu is None or not others
                else f", idle server(s) used {idle_cpu:.2f} CPU-s"
            )
            cores = measurement.cores_used
            print(
                f"  {server.target.name:<18} {wrk.tokens_per_s:8.1f} tokens/s"
                f"  p50 {wrk.p50_ms:.2f} ms  p99 {wrk.p99_ms:.2f} ms"
                f"{'' if cores is None else f', {cores:.2f} cores'}{idle}",
                flush=True,
            )


# ------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--duration", type=float, default=10.0, help="measured seconds per server per round"
    )
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="warm-up seconds per server (once, 0 skips it)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="measured rounds; the verdict uses the medians"
    )
    add_server_arguments(parser)
    parser.add_argument(
        "--no-per-core",
        dest="per_core",
        action="store_false",
        help="skip tokens/s per core (a one-worker Dicomite and a node process, pinned to one CPU)",
    )
    parser.add_argument(
        "--only", choices=("all", "peer", "dicomite"), default="all", help="servers to run"
    )
    parser.add_argument(
        "--ceiling-seconds",
        type=float,
        default=5.0,
        help="seconds per RS256 signing-ceiling measurement (0 skips it)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 600:
        parser.error("--duration must be 1..600 s and --warmup 0..600 s")
    if not 1 <= args.rounds <= 50:
        parser.error("--rounds must be 1..50")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    meta: dict[str, Any] = {
        **base_meta(),
        "wrk": ensure_wrk(),
        "config": {
            "threads": WRK_THREADS,
            "connections": WRK_CONNECTIONS,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "dicomite_workers": args.workers,
            "per_core": args.per_core,
        },
    }
    baseline = None
    if args.baseline and args.only in ("all", "dicomite"):
        baseline = ensure_baseline(args.baseline)
        meta["baseline"] = {"ref": baseline.ref, "commit": baseline.commit}
    if args.only in ("all", "peer"):
        meta["node"] = node_version()
        meta["oidc_provider"] = ensure_peer_deps()
    ceiling = measure_signing_ceiling(args.ceiling_seconds) if args.ceiling_seconds > 0 else None
    with (
        tempfile.TemporaryDirectory(prefix="dicomite-bench-") as data_dir,
        tempfile.TemporaryDirectory(prefix="dicomite-bench-lua-") as script_dir,
        contextlib.ExitStack() as stack,  # stops every started server, in reverse order
    ):
        targets = build_targets(args.only, args.workers, Path(data_dir), baseline, args.per_core)
        live = start_servers(stack, targets, Path(script_dir))
        run_rounds(live, args.warmup, args.duration, args.rounds)
        results = [server.result for server in live]
    print_report(results, ceiling, args.rounds)
    write_json(results, ceiling, meta, args.rounds)
    failed = [r.name for r in results if r.errors]
    if failed:
        print(f"FAILED: error responses from {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
