"""Token benchmark: constants, records, prerequisites, signing ceiling, the two targets."""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import shutil
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass, field, replace
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from _baseline import BASELINE_NAME, Baseline
from _processes import BENCH_DIR, HOST, REPO_ROOT, RESULTS_DIR, dicomite_executable, free_port
from _wrk import WrkResult

PEER_DIR = BENCH_DIR / "peers" / "oidc-provider"
RESULTS_FILE = RESULTS_DIR / "token_throughput.json"

WRK_THREADS = 2
WRK_CONNECTIONS = 8
PEER_NAME = "oidc-provider"
DICOMITE_NAME = "dicomite"
# Tokens/s per core: one Dicomite worker and one node process, each pinned to the same one CPU
# (wrk runs on the others). Unpinned, node signs on its libuv thread pool, on every core.
ONE_WORKER_NAME = "dicomite-1w"
PEER_ONE_CORE_NAME = "oidc-provider-1cpu"
PEER_SCOPE = "read"  # the scope the peer's resource server grants
DICOMITE_SCOPE = "https://graph.microsoft.com/.default"
TARGET_RATIO = 1.2
TARGET_P99_MS = 20.0
READY_TIMEOUT_S = 90.0
STOP_GRACE_S = 10.0


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
    # The CPUs (a taskset list) wrk runs on against this server; None: unpinned.
    load_cpus: str | None = None


@dataclass(frozen=True)
class Measurement:
    """One measured wrk run of one server in one round."""

    round: int  # 1-based
    position: int  # 1 = measured first in its round, 2 = second
    wrk: WrkResult
    # CPU seconds the other (idle) servers used while this one was measured;
    # None where /proc is not available.
    idle_others_cpu_s: float | None
    # CPU seconds the measured server used (every process and thread of it); None without /proc.
    server_cpu_s: float | None = None

    @property
    def cores_used(self) -> float | None:
        if self.server_cpu_s is None or not self.wrk.elapsed_s:
            return None
        return self.server_cpu_s / self.wrk.elapsed_s


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
    def cores_used(self) -> float | None:
        """The median over the rounds of the cores the server used (None without /proc)."""
        cores = [m.cores_used for m in self.measurements if m.cores_used is not None]
        return statistics.median(cores) if cores else None

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


# ------------------------------------------------------------------ the targets


def one_core_split() -> tuple[str, str] | None:
    """(the server's CPU, the load generator's CPUs) as taskset lists, or None with one CPU."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return None
    return str(usable[0]), ",".join(str(cpu) for cpu in usable[1:])


def pinned(target: Target, name: str, split: tuple[str, str]) -> Target:
    """`target` on one CPU (taskset, inherited by every process and thread it starts)."""
    cpu, load = split
    return replace(
        target,
        name=name,
        config=f"{target.config}; pinned to CPU {cpu}, wrk on CPU {load}",
        command=["taskset", "-c", cpu, *target.command],
        load_cpus=load,
    )


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


def dicomite_target(
    client_id: str,
    secret: str,
    workers: int | None,
    data_dir: Path,
    name: str = DICOMITE_NAME,
    baseline: Baseline | None = None,
) -> Target:
    """`dicomite serve --http`, at its default workers unless `workers` is given; `baseline`
    runs that earlier commit's installed code instead."""
    exe = baseline.executable if baseline else dicomite_executable()
    port, tenant = free_port(), str(uuid.uuid4())
    base = f"http://{HOST}:{port}/{tenant}"
    env = {
        **os.environ,
        "DICOMITE_BOOTSTRAP_CLIENT_ID": client_id,
        "DICOMITE_BOOTSTRAP_CLIENT_SECRET": secret,
        "DICOMITE_TENANT_ID": tenant,
    }
    command = [str(exe), "serve", "--data-dir", str(data_dir), "--host", HOST]
    command += ["--port", str(port), "--http"]
    command += ["--workers", str(workers)] if workers is not None else []
    count = f"--workers {workers}" if workers is not None else "default workers (no --workers)"
    code = f"commit {baseline.commit[:12]} ({baseline.ref})" if baseline else "this checkout"
    return Target(
        name=name,
        config=f"{code}, {count}, plain HTTP",
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
        cwd=baseline.tree if baseline else REPO_ROOT,
    )


def build_targets(
    only: str, workers: int | None, data_dir: Path, baseline: Baseline | None, per_core: bool
) -> list[Target]:
    """The peer; the baseline (with `workers`, else as many as Dicomite's default: one per
    usable core; its own default was 1); Dicomite at its defaults (or `workers`); and, for
    `per_core`, one node process and a one-worker Dicomite each pinned to one CPU. Each
    Dicomite gets its own data folder."""
    client_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(40)
    split = one_core_split() if per_core else None
    if per_core and split is None:
        print("one usable CPU: no per-core measurement (it pins the server apart from wrk)")
    targets = []
    if only in ("all", "peer"):
        targets.append(peer_target(client_id, secret))
    if only in ("all", "peer") and split:
        targets.append(pinned(peer_target(client_id, secret), PEER_ONE_CORE_NAME, split))
    if only in ("all", "dicomite") and baseline is not None:
        count = workers if workers is not None else len(os.sched_getaffinity(0))
        folder = data_dir / BASELINE_NAME
        targets.append(dicomite_target(client_id, secret, count, folder, BASELINE_NAME, baseline))
    if only in ("all", "dicomite"):
        folder = data_dir / DICOMITE_NAME
        targets.append(dicomite_target(client_id, secret, workers, folder))
    if only in ("all", "dicomite") and split:
        one = dicomite_target(client_id, secret, 1, data_dir / ONE_WORKER_NAME)
        targets.append(pinned(one, ONE_WORKER_NAME, split))
    return targets
