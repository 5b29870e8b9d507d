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

Only one server is under load at a time; the other one sits idle meanwhile.
The CPU time the idle server uses during each measurement is recorded (it is
~0), so the assumption that an idle server costs nothing is checked every run.
Exit status is non-zero if any server answered with a non-2xx status or wrk
saw socket errors in any measured round.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path
from types import FrameType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PEER_DIR = BENCH_DIR / "peers" / "oidc-provider"
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_FILE = RESULTS_DIR / "token_throughput.json"

HOST = "127.0.0.1"  # loopback only: this benchmark never sends traffic elsewhere
WRK_THREADS = 2
WRK_CONNECTIONS = 8
PEER_NAME = "oidc-provider"
DICOMITE_NAME = "dicomite"
PEER_SCOPE = "read"  # the scope the peer's resource server grants
DICOMITE_SCOPE = "https://graph.microsoft.com/.default"
TARGET_RATIO = 1.2
TARGET_P99_MS = 20.0
READY_TIMEOUT_S = 90.0
STOP_GRACE_S = 10.0

# wrk prints durations with these unit suffixes (see wrk's units.c).
_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Target:
    """One server to benchmark: how to start it and what to send it."""

    name: str
    config: str  # human-readable description of how the server runs
    command: list[str]
    env: dict[str, str]
    ready_url: str
    token_url: str
    form: dict[str, str]
    cwd: Path = REPO_ROOT


@dataclass(frozen=True)
class WrkResult:
    requests: int
    elapsed_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def tokens_per_s(self) -> float:
        # Only successful responses carry a token; wrk's Requests/sec counts all.
        return (self.requests - self.non_2xx) / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


@dataclass(frozen=True)
class Measurement:
    """One measured wrk run of one server in one round."""

    round: int  # 1-based
    position: int  # 1 = measured first in its round, 2 = second
    wrk: WrkResult
    # CPU seconds the other (idle) servers used while this one was measured;
    # None where /proc is not available.
    idle_others_cpu_s: float | None


@dataclass
class ServerResult:
    name: str
    config: str
    measurements: list[Measurement] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return statistics.median(m.wrk.tokens_per_s for m in self.measurements)

    @property
    def p50_ms(self) -> float:
        return statistics.median(m.wrk.p50_ms for m in self.measurements)

    @property
    def p99_ms(self) -> float:
        return statistics.median(m.wrk.p99_ms for m in self.measurements)

    @property
    def non_2xx(self) -> int:
        return sum(m.wrk.non_2xx for m in self.measurements)

    @property
    def socket_errors(self) -> int:
        return sum(m.wrk.socket_errors for m in self.measurements)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    def in_round(self, number: int) -> Measurement | None:
        return next((m for m in self.measurements if m.round == number), None)


@dataclass(frozen=True)
class SigningCeiling:
    seconds: float
    one_process_per_s: float
    two_processes_per_s: float


# ------------------------------------------------------------------ prerequisites


def ensure_wrk() -> str:
    """Install wrk from Debian if it is missing (idempotent); return its version line."""
    if shutil.which("wrk") is None:
        print("wrk not found: installing it with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        # A fresh machine may have empty apt lists, so update before installing.
        subprocess.run(["apt-get", "update"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, env=env)
    # `wrk --version` prints its banner and exits 1; we only want the first line.
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def _locked_peer_version() -> str | None:
    lock = json.loads((PEER_DIR / "package-lock.json").read_text())
    version = lock.get("packages", {}).get("node_modules/oidc-provider", {}).get("version")
    return str(version) if version else None


def _installed_peer_version() -> str | None:
    manifest = PEER_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


def ensure_peer_deps() -> str:
    """Install the peer's npm dependencies unless the locked version is already there."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("node and npm are required for the oidc-provider peer")
    has_lock = (PEER_DIR / "package-lock.json").exists()
    if has_lock and _installed_peer_version() == _locked_peer_version():
        return str(_installed_peer_version())
    # `npm ci` reproduces the committed lockfile exactly; `npm install` creates one.
    cmd = ["npm", "ci"] if has_lock else ["npm", "install"]
    print(f"installing peer dependencies: {' '.join(cmd)}", flush=True)
    subprocess.run([*cmd, "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True)
    version = _installed_peer_version()
    if version is None:
        raise SystemExit("npm finished but oidc-provider is not installed")
    return version


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------- signing ceiling


def _sign_worker(seconds: float, barrier: Barrier, results: Any) -> None:
    """Count RS256 (PKCS#1 v1.5 + SHA-256, 2048-bit) signatures for `seconds`."""
    # Imported here so the spawned process pays the import before the barrier.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # Roughly the size of a JWT signing input (header.payload); RSA cost barely
    # depends on it, SHA-256 of a few hundred bytes is noise.
    message = secrets.token_bytes(400)
    pad, algorithm = padding.PKCS1v15(), hashes.SHA256()
    key.sign(message, pad, algorithm)
    barrier.wait()  # all processes start timing together, so they really overlap
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while (now := time.perf_counter()) < deadline:
        for _ in range(20):
            key.sign(message, pad, algorithm)
        count += 20
    results.put((count, now - start))


def signatures_per_second(processes: int, seconds: float) -> float:
    """Aggregate RS256 signatures/s of `processes` processes signing at once."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(target=_sign_worker, args=(seconds, barrier, results)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        # Each worker reports (signatures, seconds); the ceiling is the sum of rates.
        reports = [results.get(timeout=seconds + 60) for _ in workers]
        rates: list[float] = [count / elapsed for count, elapsed in reports]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    return sum(rates)


def measure_signing_ceiling(seconds: float) -> SigningCeiling:
    print(f"measuring RS256 signing ceiling ({seconds:.0f} s per setting)...", flush=True)
    return SigningCeiling(
        seconds=seconds,
        one_process_per_s=signatures_per_second(1, seconds),
        two_processes_per_s=signatures_per_second(2, seconds),
    )


# ------------------------------------------------------------ process management


def free_port() -> int:
    """A currently free loopback port (the OS picks it when binding to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_cpu_seconds(pgid: int) -> float | None:
    """User+system CPU seconds of the live processes in process group `pgid` (Linux /proc)."""
    proc_root = Path("/proc")
    if not proc_root.is_dir():
        return None
    ticks = 0
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process exited while we looked
            continue
        # Fields after the parenthesised command name (which may contain spaces):
        # state ppid pgrp ... utime(14th field) stime(15th field).
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's whole process group, SIGKILL it after a grace period."""
    pgid = proc.pid  # start_new_session=True made the server its group leader
    if proc.poll() is None:
        _signal_group(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            print(f"  pid {proc.pid} ignored SIGTERM for {STOP_GRACE_S:.0f} s: SIGKILL", flush=True)
    # Also reap worker processes that outlived their parent.
    _signal_group(pgid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def running_server(target: Target, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own process group; always stop it on the way out."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            target.command,
            cwd=target.cwd,
            env=target.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, so workers die with it
        )
        try:
            yield proc
        finally:
            stop_process(proc)


def wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Poll `url` until it answers 200; fail early if the server process exits."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
        # Connection refused / HTTP errors (both OSError) just mean "not yet".
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {READY_TIMEOUT_S:.0f} s; see {log_path}")


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


def _lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def write_lua_script(form: dict[str, str], directory: Path) -> Path:
    """The same request shape for every server: a form-encoded POST, only the body differs."""
    body = urllib.parse.urlencode(form)
    script = directory / "token_request.lua"
    script.write_text(
        "-- generated by bench/token_throughput.py\n"
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f"wrk.body = {_lua_string(body)}\n"
    )
    return script


def run_wrk(url: str, script: Path, seconds: float) -> str:
    cmd = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    # wrk stops itself after -d; the timeout only guards against a hung wrk.
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    return out.stdout


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS_MS[unit]


def _search(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise ValueError(f"wrk output has no match for {pattern!r}:\n{text}")
    return match


def _percentile_ms(text: str, percent: int) -> float:
    match = _search(rf"^\s*{percent}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text)
    return _to_ms(match[1], match[2])


def parse_wrk(text: str) -> WrkResult:
    """Parse wrk's `--latency` report (wrk 4.x text format)."""
    total = _search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return WrkResult(
        requests=int(total[1]),
        elapsed_s=_to_ms(total[2], total[3]) / 1000.0,
        requests_per_s=float(_search(r"^Requests/sec:\s+([\d.]+)", text)[1]),
        p50_ms=_percentile_ms(text, 50),
        p99_ms=_percentile_ms(text, 99),
        # wrk omits both lines entirely when the count is zero.
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


# ------------------------------------------------------------------ the targets


def peer_target(client_id: str, secret: str) -> Target:
    port = free_port()
    base = f"http://{HOST}:{port}"
    env = {
        **os.environ,
        "NODE_ENV": "production",  # as deployed; oidc-provider only warns less
        "BENCH_CLIENT_ID": client_id,
        "BENCH_CLIENT_SECRET": secret,
    }
    return Target(
        name=PEER_NAME,
        config="1 node process (single event loop, no cluster), in-memory adapter",
        command=["node", "server.mjs", str(port)],
        env=env,
        ready_url=f"{base}/.well-known/openid-configuration",
        token_url=f"{base}/token",  # oidc-provider's default token route
        form={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": PEER_SCOPE,
        },
        cwd=PEER_DIR,
    )


def dicomite_executable() -> Path | None:
    local = REPO_ROOT / ".venv" / "bin" / "dicomite"
    if local.exists():
        return local
    found = shutil.which("dicomite")
    return Path(found) if found else None


def dicomite_target(client_id: str, secret: str, workers: int, data_dir: Path) -> Target:
    exe = dicomite_executable()
    if exe is None:
        raise SystemExit("dicomite is not installed (expected .venv/bin/dicomite)")
    port, tenant = free_port(), str(uuid.uuid4())
    base = f"http://{HOST}:{port}/{tenant}"
    env = {
        **os.environ,
        "DICOMITE_BOOTSTRAP_CLIENT_ID": client_id,
        "DICOMITE_BOOTSTRAP_CLIENT_SECRET": secret,
        "DICOMITE_TENANT_ID": tenant,
    }
    command = [str(exe), "serve", "--data-dir", str(data_dir), "--host", HOST]
    command += ["--port", str(port), "--http", "--workers", str(workers)]
    return Target(
        name=DICOMITE_NAME,
        config=f"{workers} worker process(es) (--workers {workers}), plain HTTP",
        command=command,
        env=env,
        ready_url=f"{base}/v2.0/.well-known/openid-configuration",
        token_url=f"{base}/oauth2/v2.0/token",
        form={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": DICOMITE_SCOPE,
        },
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
        wait_ready(proc, target.ready_url, log_path)
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
) -> tuple[WrkResult, float | None]:
    """One wrk run against `server`; also the CPU the idle `others` used meanwhile."""
    before = [group_cpu_seconds(o.proc.pid) for o in others]
    result = parse_wrk(run_wrk(server.target.token_url, server.script, seconds))
    after = [group_cpu_seconds(o.proc.pid) for o in others]
    for live in (server, *others):
        live.check_alive()
    idle_cpu: float | None = 0.0
    for b, a in zip(before, after, strict=True):
        idle_cpu = (
            None if a is None or b is None or idle_cpu is None else idle_cpu + max(0.0, a - b)
        )
    return result, idle_cpu


def run_rounds(live: list[LiveServer], warmup_s: float, duration_s: float, rounds: int) -> None:
    """One warm-up per server, then `rounds` rounds measuring every server back to back."""
    if warmup_s > 0:
        for server in live:
            print(f"\n[{server.target.name}] warm-up {warmup_s:.0f} s...", flush=True)
            run_wrk(server.target.token_url, server.script, warmup_s)
            server.check_alive()
    for number in range(1, rounds + 1):
        # Odd rounds: the order given (peer first); even rounds: reversed.
        order = live if number % 2 else live[::-1]
        print(
            f"\nround {number}/{rounds}: {' then '.join(s.target.name for s in order)}", flush=True
        )
        for position, server in enumerate(order, start=1):
            others = [o for o in live if o is not server]
            wrk, idle_cpu = measure(server, others, duration_s)
            server.result.measurements.append(Measurement(number, position, wrk, idle_cpu))
            idle = (
                ""
                if idle_cpu is None or not others
                else f", idle server(s) used {idle_cpu:.2f} CPU-s"
            )
            print(
                f"  {server.target.name:<15} {wrk.tokens_per_s:8.1f} tokens/s"
                f"  p50 {wrk.p50_ms:.2f} ms  p99 {wrk.p99_ms:.2f} ms{idle}",
                flush=True,
            )


def build_targets(only: str, workers: int, data_dir: Path) -> list[Target]:
    client_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(40)
    targets = []
    if only in ("all", "peer"):
        targets.append(peer_target(client_id, secret))
    if only in ("all", "dicomite"):
        targets.append(dicomite_target(client_id, secret, workers, data_dir))
    return targets


# ---------------------------------------------------------------------- report


def _find(results: list[ServerResult], name: str) -> ServerResult | None:
    return next((r for r in results if r.name == name), None)


def _ratio(results: list[ServerResult]) -> float | None:
    """Dicomite's median tokens/s over the peer's median tokens/s."""
    dicomite, peer = _find(results, DICOMITE_NAME), _find(results, PEER_NAME)
    if dicomite is None or peer is None or not peer.tokens_per_s:
        return None
    return dicomite.tokens_per_s / peer.tokens_per_s


def _round_ratios(results: list[ServerResult], rounds: int) -> list[float | None]:
    """Per-round ratios, only to show the spread; the verdict uses the medians."""
    dicomite, peer = _find(results, DICOMITE_NAME), _find(results, PEER_NAME)
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
        f"{'round':<7} {'server':<15} {'tokens/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'errors':>7} {'sock err':>8} {'idle %cpu':>9}"
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
            f"{m.round:<7} {name:<15} {w.tokens_per_s:>10.1f} {w.p50_ms:>8.2f} {w.p99_ms:>8.2f}"
            f" {w.non_2xx:>7} {w.socket_errors:>8} {_idle_pct(m):>9}"
        )
    print("-" * len(header))
    for r in results:
        print(
            f"{'median':<7} {r.name:<15} {r.tokens_per_s:>10.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}"
            f" {r.non_2xx:>7} {r.socket_errors:>8}"
        )
    print(
        "(errors and sock err on the median lines are totals over all rounds;"
        " idle %cpu: CPU the idle server used meanwhile, % of one core)"
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
        per_round = ", ".join(
            f"{x:.2f}" if x is not None else "-" for x in _round_ratios(results, rounds)
        )
        print(f"per-round ratios {DICOMITE_NAME}/{PEER_NAME}: {per_round}")
        print(
            f"ratio {DICOMITE_NAME}/{PEER_NAME} (median of {rounds} rounds): {ratio:.2f}x"
            f" (target >= {TARGET_RATIO}x); {DICOMITE_NAME} p99 {dicomite.p99_ms:.1f} ms"
            f" (target <= {TARGET_P99_MS:.0f} ms)"
        )


def _measurement_json(m: Measurement) -> dict[str, Any]:
    return {
        "round": m.round,
        "position": m.position,
        **asdict(m.wrk),
        "tokens_per_s": m.wrk.tokens_per_s,
        "idle_others_cpu_s": m.idle_others_cpu_s,
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
        "targets": {
            "ratio_min": TARGET_RATIO,
            "p99_ms_max": TARGET_P99_MS,
            "met": (ratio is not None and dicomite is not None)
            and ratio >= TARGET_RATIO
            and dicomite.p99_ms <= TARGET_P99_MS,
        },
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {RESULTS_FILE.relative_to(REPO_ROOT)}")


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
    parser.add_argument("--workers", type=int, default=2, help="Dicomite worker processes")
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
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    return args


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so every `finally` stops its server.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    meta: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": platform.python_version(),
        "wrk": ensure_wrk(),
        "config": {
            "threads": WRK_THREADS,
            "connections": WRK_CONNECTIONS,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "dicomite_workers": args.workers,
        },
    }
    if args.only in ("all", "peer"):
        meta["node"] = node_version()
        meta["oidc_provider"] = ensure_peer_deps()
    ceiling = measure_signing_ceiling(args.ceiling_seconds) if args.ceiling_seconds > 0 else None
    with (
        tempfile.TemporaryDirectory(prefix="dicomite-bench-") as data_dir,
        tempfile.TemporaryDirectory(prefix="dicomite-bench-lua-") as script_dir,
        contextlib.ExitStack() as stack,  # stops every started server, in reverse order
    ):
        targets = build_targets(args.only, args.workers, Path(data_dir))
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
