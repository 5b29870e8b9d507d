"""DICOMweb throughput: Dicomite vs Orthanc 1.10 + its DICOMweb plugin, side by side.

Run from the repository root:  .venv/bin/python bench/dicom_throughput.py

What it does, in order (default mode):
1. makes sure Orthanc and its DICOMweb plugin (Debian packages `orthanc`,
   `orthanc-dicomweb`), `wrk` and pydicom are installed, and that the Debian
   `orthanc` service is stopped and disabled (only our own instance runs);
2. generates (once, then cached under bench/results/dicom-cache/) a
   deterministic corpus: --studies studies x 4 series x 10 CT images of
   512x512 16-bit pixels, uncompressed;
3. starts both servers once, each on a free loopback port, in its own process
   group and with a temporary storage folder; Dicomite gets a client with
   Dicom.ReadWrite (registered with the `dicomite app` CLI) and a bearer token;
4. STOW: the corpus is split into --rounds + 1 slices of whole studies; slice 0
   is stored into both servers as the warm-up, slice N in round N, one
   multipart/related request per series (10 instances), 4 requests in flight,
   the peer first in odd rounds and Dicomite first in even rounds. Every store
   response is checked (200, every instance referenced, none failed);
5. checks that both servers now answer the same QIDO queries with the same
   number of results, return complete metadata and byte-identical studies;
6. runs --rounds rounds of QIDO (8 connections), study metadata (8) and WADO
   whole-study retrieval (4) with wrk against both servers back to back,
   alternating who goes first;
7. stops both servers and prints every measurement, the per-server medians and
   the ratios Dicomite/Orthanc beside their targets; writes
   bench/results/dicom_throughput.json.

Optional modes (not run by default): --scale (100,000 small instances indexed,
QIDO p50) and --big (one 1 GiB multi-frame instance stored and retrieved while
the server's RSS is sampled). Loopback only; every loop is bounded; servers
are stopped on errors, Ctrl-C and SIGTERM. Exit status 1 if any request
failed or any check did not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http.client
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dicom_corpus import BigInstance, Corpus, CorpusStudy

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = RESULTS_DIR / "dicom-cache"
RESULTS_FILE = RESULTS_DIR / "dicom_throughput.json"
SCALE_RESULTS_FILE = RESULTS_DIR / "dicom_scale.json"
BIG_RESULTS_FILE = RESULTS_DIR / "dicom_big.json"

HOST = "127.0.0.1"  # loopback only: this benchmark never sends traffic elsewhere
PEER_NAME = "orthanc"
DICOMITE_NAME = "dicomite"
DICOM_SCOPE = "https://dicom.healthcareapis.azure.com/.default"
ORTHANC_PACKAGES = ("orthanc", "orthanc-dicomweb")
ORTHANC_PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))

STOW_CONCURRENCY = 4  # requests in flight; one request per series (10 instances)
QIDO_CONNECTIONS = 8
METADATA_CONNECTIONS = 8
WADO_CONNECTIONS = 4
WRK_THREADS = 2
WRK_TIMEOUT = "60s"  # a whole-study retrieval may take a while under load
QIDO_LIMIT = 100  # sent explicitly: Dicomite's default, Orthanc has no default limit

ACCEPT_JSON = "application/dicom+json"
ACCEPT_WADO = 'multipart/related; type="application/dicom"; transfer-syntax=*'

TARGETS = {"stow": 2.0, "qido": 5.0, "wado": 1.5, "metadata": 5.0}  # Dicomite/Orthanc
SCALE_TARGET_P50_MS = 20.0
BIG_TARGET_RSS_GROWTH_MB = 200.0
SCALE_SERIES_PER_STUDY = 2
SCALE_INSTANCES_PER_SERIES = 5
READY_TIMEOUT_S = 120.0
STOP_GRACE_S = 15.0
MB = 1_000_000  # MB/s and RSS growth are in units of 10^6 bytes

# --------------------------------------------------------------------------- data


@dataclass
class Server:
    """A started, verified server and what is needed to send it DICOMweb requests."""

    name: str
    config: str
    origin: str  # http://127.0.0.1:PORT
    root: str  # DICOMweb path prefix without trailing slash, e.g. /dicom/v2
    proc: subprocess.Popen[bytes]
    log_path: Path
    headers: dict[str, str] = field(default_factory=dict)  # Authorization for Dicomite
    refresh_auth: Callable[[], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.origin + self.root

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}; see {self.log_path}"
            )

    def fresh_auth(self) -> None:
        """Get a new bearer token before a phase (tokens live ~1 hour)."""
        if self.refresh_auth is not None:
            self.refresh_auth()


@dataclass(frozen=True)
class Measurement:
    """One measured run of one server for one kind of request in one round."""

    kind: str  # stow | qido | metadata | wado
    round: int  # 1-based
    position: int  # 1 = measured first in its round, 2 = second
    requests: int
    elapsed_s: float
    bytes: int  # response bytes (GET) or request body bytes (STOW)
    instances: int  # STOW only
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx, socket errors, failed instances
    server_cpu_s: float | None
    client_cpu_s: float | None
    idle_others_cpu_s: float | None
    closes_not_counted: int = 0  # see WrkRun

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def instances_per_s(self) -> float:
        return self.instances / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def value(self) -> float:
        """The figure the ratio uses for this kind."""
        if self.kind == "stow":
            return self.instances_per_s
        if self.kind == "wado":
            return self.mb_per_s
        return self.requests_per_s


UNITS = {"stow": "instances/s", "qido": "requests/s", "wado": "MB/s", "metadata": "requests/s"}
KINDS = ("stow", "qido", "metadata", "wado")


@dataclass
class ServerResult:
    name: str
    config: str
    measurements: list[Measurement] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: str) -> list[Measurement]:
        return [m for m in self.measurements if m.kind == kind]

    def median(self, kind: str) -> float | None:
        values = [m.value for m in self.of(kind)]
        return statistics.median(values) if values else None

    def median_p50(self, kind: str) -> float | None:
        values = [m.p50_ms for m in self.of(kind)]
        return statistics.median(values) if values else None

    @property
    def errors(self) -> int:
        return sum(m.errors for m in self.measurements)


# ------------------------------------------------------------------ prerequisites


def _apt_install(packages: Sequence[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing with apt-get: {' '.join(packages)}", flush=True)
    # A fresh machine may have empty apt lists, so update before installing.
    subprocess.run(["apt-get", "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", *packages], check=True, env=env)


def find_dicomweb_plugin() -> Path | None:
    for folder in ORTHANC_PLUGIN_DIRS:
        if not folder.is_dir():
            continue
        for candidate in sorted(folder.glob("libOrthancDicomWeb.so*")):
            if candidate.is_file():
                return candidate.resolve()
    return None


def _dpkg_version(package: str) -> str | None:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}|${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    status, _, version = out.stdout.partition("|")
    return version if out.returncode == 0 and "installed" in status.split() else None


def stop_debian_orthanc_service() -> str:
    """The packaged service may start on install: stop and disable it (idempotent)."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        subprocess.run(
            ["systemctl", "disable", "--now", "orthanc"], check=False, capture_output=True
        )
        return "systemctl disable --now orthanc"
    init_script = Path("/etc/init.d/orthanc")
    if not init_script.exists():
        return "no orthanc service installed"
    if shutil.which("update-rc.d"):
        subprocess.run(["update-rc.d", "orthanc", "disable"], check=False, capture_output=True)
    status = subprocess.run([str(init_script), "status"], check=False, capture_output=True)
    if status.returncode == 0:  # LSB: 0 = running
        subprocess.run([str(init_script), "stop"], check=False, capture_output=True)
        return "the Debian orthanc service was running: stopped and disabled"
    return "the Debian orthanc service is not running (disabled with update-rc.d)"


def ensure_orthanc() -> dict[str, str]:
    """Install Orthanc + its DICOMweb plugin from Debian if missing (idempotent)."""
    missing = [p for p in ORTHANC_PACKAGES if _dpkg_version(p) is None]
    if missing or shutil.which("Orthanc") is None or find_dicomweb_plugin() is None:
        _apt_install(ORTHANC_PACKAGES)
    plugin = find_dicomweb_plugin()
    executable = shutil.which("Orthanc")
    if plugin is None or executable is None:
        raise SystemExit("Orthanc or libOrthancDicomWeb.so not found after installing")
    service = stop_debian_orthanc_service()
    version = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
    return {
        "executable": executable,
        "version": version.stdout.splitlines()[0].strip() if version.stdout else "?",
        "package": str(_dpkg_version("orthanc")),
        "dicomweb_package": str(_dpkg_version("orthanc-dicomweb")),
        "dicomweb_plugin": str(plugin),
        "service": service,
    }


def ensure_wrk() -> str:
    if shutil.which("wrk") is None:
        _apt_install(["wrk"])
    # `wrk --version` prints its banner and exits 1; we only want the first line.
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def ensure_pydicom() -> str:
    """pydicom generates the corpus; install it into this interpreter's venv if missing."""
    if importlib.util.find_spec("pydicom") is None:
        print("pydicom not found: installing it with pip", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "pydicom>=3,<4"], check=True)
        importlib.invalidate_caches()
    return importlib.metadata.version("pydicom")


def dicomite_executable() -> Path:
    local = REPO_ROOT / ".venv" / "bin" / "dicomite"
    if local.exists():
        return local
    found = shutil.which("dicomite")
    if found is None:
        raise SystemExit("dicomite is not installed (expected .venv/bin/dicomite)")
    return Path(found)


# ------------------------------------------------------------ process management


def free_port() -> int:
    """A currently free loopback port (the OS picks it when binding to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process exited while we looked
            continue
        # Fields after the parenthesised command name: state ppid pgrp ...
        if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def group_cpu_seconds(pgid: int) -> float | None:
    """User+system CPU seconds of the live processes in process group `pgid` (Linux /proc)."""
    if not Path("/proc").is_dir():
        return None
    ticks = 0
    for pid in _group_pids(pgid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def group_rss_bytes(pids: Sequence[int]) -> int:
    """Sum of VmRSS over `pids` (from /proc/<pid>/status)."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.MULTILINE)
        if match:
            total += int(match[1]) * 1024
    return total


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's whole process group, SIGKILL it after a grace period."""
    pgid = proc.pid  # start_new_session=True made the server its group leader
    if proc.poll() is None:
        _signal_group(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            print(f"  pid {proc.pid} ignored SIGTERM for {STOP_GRACE_S:.0f} s: SIGKILL", flush=True)
    _signal_group(pgid, signal.SIGKILL)  # also reap workers that outlived their parent
    proc.wait()


@contextlib.contextmanager
def running_process(
    command: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own process group; always stop it on the way out."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
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
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {READY_TIMEOUT_S:.0f} s; see {log_path}")


def http_request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 60.0,
) -> tuple[int, dict[str, str], bytes]:
    """One plain request (for setup and checks, not for load); HTTP errors are returned."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


# ------------------------------------------------------------------ the servers


def start_orthanc(stack: contextlib.ExitStack, work: Path, info: dict[str, str]) -> Server:
    """Our own Orthanc: generated config, temporary storage, HTTP on a free loopback port."""
    port, dicom_port = free_port(), free_port()
    storage, index = work / "storage", work / "index"
    storage.mkdir(parents=True)
    index.mkdir(parents=True)
    config = {
        "Name": "dicomite-bench-orthanc",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(index),
        "HttpPort": port,
        # Orthanc 1.10 cannot bind to one address; RemoteAccessAllowed=false makes it
        # refuse every client that is not on loopback.
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "DicomPort": dicom_port,
        "Plugins": [info["dicomweb_plugin"]],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Ssl": False},
        "SaveJobs": False,
        "HttpDescribeErrors": True,
    }
    config_path = work / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    command = [info["executable"], "--no-jobs", str(config_path)]
    log_path = RESULTS_DIR / f"{PEER_NAME}.log"
    print(f"\n[{PEER_NAME}] starting: {' '.join(command)}  (log: {log_path})", flush=True)
    proc = stack.enter_context(running_process(command, dict(os.environ), log_path))
    origin = f"http://{HOST}:{port}"
    wait_ready(proc, f"{origin}/system", log_path)
    status, _, body = http_request("GET", f"{origin}/plugins")
    if status != 200 or "dicom-web" not in json.loads(body):
        raise RuntimeError(f"Orthanc's DICOMweb plugin is not loaded: {body[:300]!r}")
    server = Server(
        name=PEER_NAME,
        config=(
            f"{info['version']} + DICOMweb plugin {info['dicomweb_package']} (Debian), "
            "Orthanc defaults (SQLite index, 50 HTTP threads, StudiesMetadata=Full)"
        ),
        origin=origin,
        root="/dicom-web",
        proc=proc,
        log_path=log_path,
        extra={"orthanc_config": config, "packages": info},
    )
    print(f"[{PEER_NAME}] ready at {server.base}", flush=True)
    return server


def _cli_json(exe: Path, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )
    if out.returncode != 0:
        raise RuntimeError(f"dicomite {' '.join(args)} failed: {out.stderr or out.stdout}")
    if "--json" not in args:
        return {}
    payload: dict[str, Any] = json.loads(out.stdout)
    return payload


def register_dicom_client(exe: Path, data_dir: Path, env: dict[str, str]) -> tuple[str, str]:
    """A confidential client with the Dicom.ReadWrite app role, via the `dicomite app` CLI."""
    name = f"dicom-bench-{secrets.token_hex(4)}"
    common = ["--data-dir", str(data_dir)]
    app = _cli_json(exe, ["app", "create", name, "--json", *common], env)
    permission = ["--api", "dicom", "--permission", "Dicom.ReadWrite"]
    _cli_json(exe, ["app", "permission", "add", name, *permission, *common], env)
    _cli_json(exe, ["app", "consent", name, *common], env)
    secret = _cli_json(exe, ["app", "secret", "add", name, "--json", *common], env)
    return str(app["appId"]), str(secret["secretText"])


def request_token(token_url: str, client_id: str, secret: str) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": DICOM_SCOPE,
    }
    body = urllib.parse.urlencode(form).encode()
    status, _, payload = http_request(
        "POST", token_url, {"Content-Type": "application/x-www-form-urlencoded"}, body
    )
    if status != 200:
        raise RuntimeError(f"token request failed: {status} {payload[:500]!r}")
    token = json.loads(payload).get("access_token")
    if not isinstance(token, str):
        raise RuntimeError(f"no access_token in {payload[:300]!r}")
    return token


class DicomiteNotReadyError(RuntimeError):
    """Dicomite runs, but its DICOM service does not answer STOW (404)."""


def probe_stow(server: Server) -> int:
    """POST an empty multipart body: anything but 404 means STOW is there."""
    boundary = "probe-" + secrets.token_hex(8)
    status, _, _ = http_request(
        "POST",
        f"{server.base}/studies",
        {
            **server.headers,
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": ACCEPT_JSON,
        },
        f"--{boundary}--\r\n".encode(),
    )
    return status


def start_dicomite(stack: contextlib.ExitStack, data_dir: Path, workers: int) -> Server:
    exe = dicomite_executable()
    port, tenant = free_port(), str(uuid.uuid4())
    origin = f"http://{HOST}:{port}"
    env = {
        **os.environ,
        "DICOMITE_BOOTSTRAP_CLIENT_ID": str(uuid.uuid4()),
        "DICOMITE_BOOTSTRAP_CLIENT_SECRET": secrets.token_urlsafe(40),
        "DICOMITE_TENANT_ID": tenant,
    }
    # The CLI works on the data folder directly: register the client before serving.
    client_id, secret = register_dicom_client(exe, data_dir, env)
    command = [str(exe), "serve", "--data-dir", str(data_dir), "--host", HOST]
    command += ["--port", str(port), "--http", "--workers", str(workers)]
    command += ["--public-url", origin]
    log_path = RESULTS_DIR / f"{DICOMITE_NAME}-dicom.log"
    print(f"\n[{DICOMITE_NAME}] starting: {' '.join(command)}  (log: {log_path})", flush=True)
    proc = stack.enter_context(running_process(command, env, log_path))
    wait_ready(proc, f"{origin}/{tenant}/v2.0/.well-known/openid-configuration", log_path)
    token_url = f"{origin}/{tenant}/oauth2/v2.0/token"
    server = Server(
        name=DICOMITE_NAME,
        config=f"{workers} worker process(es), plain HTTP, SQLite + folder blob store",
        origin=origin,
        root="/dicom/v2",
        proc=proc,
        log_path=log_path,
        extra={"workers": workers},
    )

    def refresh() -> None:
        server.headers["Authorization"] = "Bearer " + request_token(token_url, client_id, secret)

    server.refresh_auth = refresh
    refresh()
    status = probe_stow(server)
    if status == 404:
        raise DicomiteNotReadyError(
            f"Dicomite's DICOM service is not there yet: POST {server.base}/studies -> 404"
        )
    print(f"[{DICOMITE_NAME}] ready at {server.base} (empty STOW probe -> {status})", flush=True)
    return server


def start_servers(
    stack: contextlib.ExitStack, only: str, work: Path, workers: int, orthanc: dict[str, str] | None
) -> list[Server]:
    """The peer first, then Dicomite; both stay up (and are stopped by `stack`)."""
    servers = []
    if only in ("all", "peer"):
        assert orthanc is not None
        servers.append(start_orthanc(stack, work / "orthanc", orthanc))
    if only in ("all", "dicomite"):
        servers.append(start_dicomite(stack, work / "dicomite", workers))
    return servers


# ------------------------------------------------------------------ STOW client


def multipart_body(parts: Sequence[bytes], boundary: str) -> bytes:
    chunks = []
    for part in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        chunks.append(part)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def stow_failures(status: int, body: bytes, expected: int) -> int:
    """Instances of a STOW request that did not get stored (0 when all are fine)."""
    if status != 200:
        return expected
    try:
        doc = json.loads(body)
    except ValueError:
        return expected
    if not isinstance(doc, dict):
        return expected
    referenced = doc.get("00081199", {}).get("Value", [])
    failed = doc.get("00081198", {}).get("Value", [])
    return max(expected - len(referenced), len(failed))


@dataclass
class StowStats:
    requests: int = 0
    instances: int = 0
    failed_instances: int = 0
    bytes: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: str | None = None


async def stow_batches(
    server: Server,
    batches: Sequence[Callable[[], list[bytes]]],
    concurrency: int,
    progress_every_s: float = 0.0,
) -> tuple[StowStats, float]:
    """POST every batch (one multipart/related request each), `concurrency` in flight."""
    import aiohttp

    stats = StowStats()
    boundary = "dicomite-bench-" + secrets.token_hex(12)
    headers = {
        **server.headers,
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": ACCEPT_JSON,
        "Accept-Encoding": "identity",
    }
    queue: asyncio.Queue[Callable[[], list[bytes]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    connector = aiohttp.TCPConnector(limit=concurrency)
    started = time.perf_counter()
    next_report = started + progress_every_s

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_report
        while True:
            try:
                make = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            parts = make()
            body = multipart_body(parts, boundary)
            t0 = time.perf_counter()
            async with session.post(f"{server.base}/studies", data=body, headers=headers) as resp:
                payload = await resp.read()
                status = resp.status
            stats.latencies_ms.append((time.perf_counter() - t0) * 1000)
            failed = stow_failures(status, payload, len(parts))
            stats.requests += 1
            stats.instances += len(parts) - failed
            stats.failed_instances += failed
            stats.bytes += len(body)
            if failed and stats.first_error is None:
                stats.first_error = f"HTTP {status}: {payload[:400]!r}"
            now = time.perf_counter()
            if progress_every_s and now >= next_report:
                next_report = now + progress_every_s
                rate = stats.instances / (now - started)
                print(
                    f"  {server.name}: {stats.instances} instances stored"
                    f" ({rate:.0f}/s, {stats.failed_instances} failed)",
                    flush=True,
                )

    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return stats, time.perf_counter() - started


def _percentile(values: Sequence[float], percent: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * (len(ordered) - 1))))
    return ordered[index]


# -------------------------------------------------------------------- wrk client


def _lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def write_wrk_script(path: Path, paths: Sequence[str], headers: dict[str, str]) -> Path:
    """GETs that cycle through `paths`; done() prints one JSON line with exact counters."""
    path_lines = ",\n".join(f"  {_lua_string(p)}" for p in paths)
    header_lines = ",\n".join(
        f"  [{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()
    )
    path.write_text(
        f"""-- generated by bench/dicom_throughput.py
local paths = {{
{path_lines}
}}
local headers = {{
{header_lines}
}}
local threads = {{}}
counter = 0

function setup(thread)
  -- spread the threads over the path list
  thread:set("counter", #threads * 7919)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"duration_us":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}}\\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""
    )
    return path


@dataclass(frozen=True)
class WrkRun:
    requests: int
    elapsed_s: float
    bytes: int
    errors: int
    p50_ms: float
    p99_ms: float
    # wrk counts a read error each time a server ends a response by closing the
    # connection (no Content-Length, no chunked encoding); see eof_delimited().
    closes_not_counted: int = 0


def eof_delimited(server: Server, path: str, accept: str) -> bool:
    """Whether the server ends this response by closing the connection.

    Orthanc does so for multipart WADO responses (`Connection: close`, neither
    Content-Length nor chunked encoding). wrk then counts one read error per
    complete response; those are not failures and are not counted as errors.
    """
    url = urllib.parse.urlsplit(server.base + path)
    conn = http.client.HTTPConnection(url.hostname or HOST, url.port, timeout=60)
    try:
        target = url.path + (f"?{url.query}" if url.query else "")
        conn.request("GET", target, headers={**server.headers, "Accept": accept})
        resp = conn.getresponse()
        resp.read()
        no_length = resp.getheader("Content-Length") is None
        chunked = "chunked" in (resp.getheader("Transfer-Encoding") or "").lower()
        return resp.status == 200 and no_length and not chunked and resp.will_close
    finally:
        conn.close()


def run_wrk(origin: str, script: Path, connections: int, seconds: float, eof: bool) -> WrkRun:
    threads = min(WRK_THREADS, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    cmd += ["--timeout", WRK_TIMEOUT, "-s", str(script), origin]
    # wrk stops itself after -d; the timeout only guards against a hung wrk.
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    doc = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(doc[k] for k in ("connect", "write", "status", "timeout"))
    closes = min(doc["read"], doc["requests"]) if eof else 0
    errors += doc["read"] - closes
    return WrkRun(
        requests=doc["requests"],
        elapsed_s=doc["duration_us"] / 1e6,
        bytes=doc["bytes"],
        errors=errors,
        p50_ms=doc["p50_us"] / 1000,
        p99_ms=doc["p99_us"] / 1000,
        closes_not_counted=closes,
    )


# ------------------------------------------------------------------- workloads


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
        count = sum(1 for s in corpus.studies if s.family_name == family)
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


def split_multipart(content_type: str, body: bytes) -> list[bytes]:
    """The payloads of a multipart/related body."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ValueError(f"no boundary in {content_type!r}")
    delimiter = b"\r\n--" + match[1].encode()
    parts = []
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk[chunk.index(b"\r\n\r\n") + 4 :])
    return parts


def verify_server(
    server: Server, corpus: Corpus, expected_qido: dict[str, int], wado_studies: int = 2
) -> list[str]:
    """Same answers from every server before measuring; returns the problems found."""
    problems: list[str] = []
    headers = {**server.headers, "Accept": ACCEPT_JSON, "Accept-Encoding": "identity"}
    for path, count in expected_qido.items():
        status, _, body = http_request("GET", server.base + path, headers)
        got = len(json.loads(body)) if status == 200 and body else 0
        if status != 200 or got != count:
            problems.append(f"QIDO {path}: HTTP {status}, {got} results, expected {count}")
    for study in corpus.studies:
        path = f"/studies/{study.study_uid}/metadata"
        status, _, body = http_request("GET", server.base + path, headers)
        items = json.loads(body) if status == 200 else []
        sops = {i.get("00080018", {}).get("Value", [None])[0] for i in items}
        wanted = {i.sop_uid for r in study.series for i in r.instances}
        if status != 200 or sops != wanted:
            problems.append(f"metadata {path}: HTTP {status}, {len(items)} instances")
        elif any("InlineBinary" in i.get("7FE00010", {}) for i in items):
            problems.append(f"metadata {path}: pixel data inline (not as BulkDataURI)")
    wado_headers = {**server.headers, "Accept": ACCEPT_WADO, "Accept-Encoding": "identity"}
    picks = corpus.studies[:1] + corpus.studies[-1:] if wado_studies > 1 else corpus.studies[:1]
    for study in picks:
        path = f"/studies/{study.study_uid}"
        status, resp_headers, body = http_request("GET", server.base + path, wado_headers)
        content_type = next((v for k, v in resp_headers.items() if k.lower() == "content-type"), "")
        if status != 200:
            problems.append(f"WADO {path}: HTTP {status}")
            continue
        got_hashes = sorted(
            hashlib.sha256(p).hexdigest() for p in split_multipart(content_type, body)
        )
        want_hashes = sorted(
            hashlib.sha256(corpus.read(i)).hexdigest() for r in study.series for i in r.instances
        )
        if got_hashes != want_hashes:
            problems.append(
                f"WADO {path}: {len(got_hashes)} parts, not byte-identical to the"
                f" {len(want_hashes)} stored files"
            )
    return problems


# ---------------------------------------------------------------------- running


def _cpu_others(others: Sequence[Server]) -> list[float | None]:
    return [group_cpu_seconds(o.proc.pid) for o in others]


def _diff(before: list[float | None], after: list[float | None]) -> float | None:
    total = 0.0
    for b, a in zip(before, after, strict=True):
        if a is None or b is None:
            return None
        total += max(0.0, a - b)
    return total


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
    idle = _diff(before_others, _cpu_others(others))
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
        server_cpu_s=_diff([before_self], [after_self]),
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
    before_self = group_cpu_seconds(server.proc.pid)
    before_others = _cpu_others(others)
    before_client = _self_cpu()
    stats, elapsed = asyncio.run(stow_batches(server, batches, STOW_CONCURRENCY))
    client = _self_cpu() - before_client
    after_self = group_cpu_seconds(server.proc.pid)
    idle = _diff(before_others, _cpu_others(others))
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
        p50_ms=_percentile(stats.latencies_ms, 50),
        p99_ms=_percentile(stats.latencies_ms, 99),
        errors=stats.failed_instances,
        server_cpu_s=_diff([before_self], [after_self]),
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
        order = servers if number % 2 else servers[::-1]
        if number == 0:
            order = servers
        label = "warm-up" if number == 0 else f"round {number}/{rounds}"
        print(f"STOW {label}: {' then '.join(s.name for s in order)}", flush=True)
        for position, server in enumerate(order, start=1):
            others = [o for o in servers if o is not server]
            m = measure_stow(server, others, corpus, parts[number], number, position)
            print(f"  {server.name:<9} {_describe(m)}", flush=True)
            if number == 0:
                if m.errors:  # the warm-up is not measured, but its data must be there
                    results[server.name].extra.setdefault("warmup_errors", 0)
                    results[server.name].extra["warmup_errors"] += m.errors
            else:
                results[server.name].measurements.append(m)


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
        for w in workloads:
            eof[(server.name, w.kind)] = eof_delimited(server, w.paths[0], w.accept)
            if eof[(server.name, w.kind)]:
                print(
                    f"note: {server.name} ends {w.kind} responses by closing the connection;"
                    " wrk's read error on each such close is not counted as an error",
                    flush=True,
                )
            scripts[(server.name, w.kind)] = write_wrk_script(
                script_dir / f"{server.name}-{w.kind}.lua",
                [server.root + p for p in w.paths],
                {**headers, "Accept": w.accept},
            )
    if warmup_s > 0:
        for w in workloads:
            for server in servers:
                print(f"warm-up {w.kind} {server.name} {warmup_s:.0f} s", flush=True)
                key = (server.name, w.kind)
                run_wrk(server.origin, scripts[key], w.connections, warmup_s, eof[key])
                server.check_alive()
    for number in range(1, rounds + 1):
        order = servers if number % 2 else servers[::-1]
        print(f"\nround {number}/{rounds}: {' then '.join(s.name for s in order)}", flush=True)
        for w in workloads:
            for position, server in enumerate(order, start=1):
                others = [o for o in servers if o is not server]
                m = measure_get(server, others, w, scripts, eof, duration_s, number, position)
                results[server.name].measurements.append(m)
                print(f"  {w.kind:<9} {server.name:<9} {_describe(m)}", flush=True)


# ---------------------------------------------------------------------- report


def ratios(results: dict[str, ServerResult]) -> dict[str, float | None]:
    dicomite, peer = results.get(DICOMITE_NAME), results.get(PEER_NAME)
    out: dict[str, float | None] = {}
    for kind in KINDS:
        d = dicomite.median(kind) if dicomite else None
        p = peer.median(kind) if peer else None
        out[kind] = d / p if d is not None and p else None
    return out


def round_ratios(results: dict[str, ServerResult], kind: str, rounds: int) -> list[float | None]:
    dicomite, peer = results.get(DICOMITE_NAME), results.get(PEER_NAME)
    out: list[float | None] = []
    for number in range(1, rounds + 1):
        d = next((m for m in dicomite.of(kind) if m.round == number), None) if dicomite else None
        p = next((m for m in peer.of(kind) if m.round == number), None) if peer else None
        out.append(d.value / p.value if d and p and p.value else None)
    return out


def print_report(results: dict[str, ServerResult], rounds: int) -> None:
    header = (
        f"{'kind':<9} {'round':<6} {'server':<9} {'value':>10} {'unit':<12} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'errors':>6} {'srv %cpu':>8} {'cli %cpu':>8} {'idle %cpu':>9}"
    )
    print("\n" + header)
    print("-" * len(header))

    def pct(x: float | None, m: Measurement) -> str:
        return "-" if x is None or not m.elapsed_s else f"{100 * x / m.elapsed_s:.0f}"

    for kind in KINDS:
        rows = sorted(
            ((m, r.name) for r in results.values() for m in r.of(kind)),
            key=lambda row: (row[0].round, row[0].position),
        )
        for m, name in rows:
            print(
                f"{kind:<9} {m.round:<6} {name:<9} {m.value:>10.1f} {UNITS[kind]:<12}"
                f" {m.p50_ms:>8.2f} {m.p99_ms:>8.2f} {m.errors:>6}"
                f" {pct(m.server_cpu_s, m):>8} {pct(m.client_cpu_s, m):>8}"
                f" {pct(m.idle_others_cpu_s, m):>9}"
            )
        for r in results.values():
            value, p50 = r.median(kind), r.median_p50(kind)
            if value is not None and p50 is not None:
                print(
                    f"{kind:<9} {'median':<6} {r.name:<9} {value:>10.1f} {UNITS[kind]:<12}"
                    f" {p50:>8.2f}"
                )
        print("-" * len(header))
    print(
        "(srv %cpu: the measured server's process group, cli %cpu: the load generator"
        " (wrk, or this process for STOW), idle %cpu: the other server; % of one core)"
    )
    for r in results.values():
        print(f"  {r.name}: {r.config}")
    rs = ratios(results)
    if any(v is not None for v in rs.values()):
        print(f"\nratios {DICOMITE_NAME}/{PEER_NAME} (medians of {rounds} round(s)):")
        for kind in KINDS:
            value = rs[kind]
            spread = ", ".join(
                f"{x:.2f}" if x is not None else "-" for x in round_ratios(results, kind, rounds)
            )
            verdict = "-" if value is None else ("met" if value >= TARGETS[kind] else "MISSED")
            shown = "-" if value is None else f"{value:.2f}x"
            print(
                f"  {kind:<9} {UNITS[kind]:<12} {shown:>7}  (target >= {TARGETS[kind]}x: {verdict};"
                f" per round {spread})"
            )


def _measurement_json(m: Measurement) -> dict[str, Any]:
    return {
        **asdict(m),
        "value": m.value,
        "unit": UNITS[m.kind],
        "requests_per_s": m.requests_per_s,
        "mb_per_s": m.mb_per_s,
    }


def write_json(
    path: Path, results: dict[str, ServerResult], meta: dict[str, Any], rounds: int
) -> None:
    rs = ratios(results)
    doc = {
        **meta,
        "servers": [
            {
                "name": r.name,
                "config": r.config,
                "medians": {
                    kind: {
                        "value": r.median(kind),
                        "unit": UNITS[kind],
                        "p50_ms": r.median_p50(kind),
                    }
                    for kind in KINDS
                },
                "errors": r.errors,
                **r.extra,
                "measurements": [_measurement_json(m) for m in r.measurements],
            }
            for r in results.values()
        ],
        "ratios_dicomite_over_peer": rs,
        "round_ratios": {kind: round_ratios(results, kind, rounds) for kind in KINDS},
        "ratio_basis": f"median over {rounds} round(s) of each server's value",
        "targets": {
            kind: {
                "ratio_min": TARGETS[kind],
                "met": None if rs[kind] is None else rs[kind] >= TARGETS[kind],  # type: ignore[operator]
            }
            for kind in KINDS
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {path.relative_to(REPO_ROOT)}")


# ----------------------------------------------------------------- main mode


def run_main(args: argparse.Namespace, meta: dict[str, Any], orthanc: dict[str, str] | None) -> int:
    import dicom_corpus

    corpus = dicom_corpus.ensure_corpus(CACHE_DIR, args.studies)
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
        servers = start_servers(stack, args.only, Path(work), args.workers, orthanc)
        results = {s.name: ServerResult(s.name, s.config, extra=dict(s.extra)) for s in servers}
        run_stow_rounds(servers, results, corpus, args.rounds)
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
    print_report(results, args.rounds)
    write_json(RESULTS_FILE, results, meta, args.rounds)
    bad = [r.name for r in results.values() if r.errors or r.extra.get("warmup_errors")]
    bad += [name for name, found in problems.items() if found]
    if bad:
        print(f"FAILED: errors or check problems on {', '.join(sorted(set(bad)))}", file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------- --scale mode


def run_scale(
    args: argparse.Namespace, meta: dict[str, Any], orthanc: dict[str, str] | None
) -> int:
    """Index --scale-instances small instances, then measure QIDO latency per query kind."""
    import dicom_corpus

    per_study = SCALE_SERIES_PER_STUDY * SCALE_INSTANCES_PER_SERIES
    study_count = max(1, args.scale_instances // per_study)
    # Only the attributes the queries need are kept; the instances are regenerated on the fly.
    index = [
        (s.study_uid, s.patient_name, s.patient_id, s.study_date, s.series_uids)
        for s in dicom_corpus.small_studies(
            study_count, SCALE_SERIES_PER_STUDY, SCALE_INSTANCES_PER_SERIES
        )
    ]
    picks = index[:: max(1, len(index) // 200)][:200]  # 200 studies spread over the corpus

    def week(day: str) -> str:
        end = datetime.strptime(day, "%Y%m%d") + timedelta(days=6)
        return f"{day}-{end:%Y%m%d}"

    kinds: dict[str, list[str]] = {
        # family name and the start of the given name, e.g. SMITH^JO*
        "patient_name_prefix": [
            "/studies?"
            + query_string({"PatientName": f"{name.split('^')[0]}^{name.split('^')[1][:2]}*"})
            for _, name, _, _, _ in picks
        ],
        "patient_id": [f"/studies?PatientID={pid}" for _, _, pid, _, _ in picks],
        "study_date_week": [
            "/studies?" + query_string({"StudyDate": week(d), "limit": QIDO_LIMIT})
            for _, _, _, d, _ in picks
        ],
        "series_of_study": [f"/studies/{uid}/series" for uid, *_ in picks],
        "instances_of_series": [
            f"/studies/{uid}/series/{series[0]}/instances" for uid, _, _, _, series in picks
        ],
    }
    out: dict[str, Any] = {
        **meta,
        "scale": {"instances": study_count * per_study, "studies": study_count, "servers": []},
    }
    failed = False
    with (
        tempfile.TemporaryDirectory(prefix="dicom-bench-scale-") as work,
        contextlib.ExitStack() as stack,
    ):
        servers = start_servers(stack, args.only, Path(work), args.workers, orthanc)
        for server in servers:
            print(
                f"\n[{server.name}] storing {study_count * per_study} small instances"
                f" ({study_count} studies, one request per study)...",
                flush=True,
            )
            server.fresh_auth()
            generated = dicom_corpus.small_studies(
                study_count, SCALE_SERIES_PER_STUDY, SCALE_INSTANCES_PER_SERIES
            )
            lock = threading.Lock()

            def next_batch(
                gen: Iterator[Any] = generated, lock: threading.Lock = lock
            ) -> list[bytes]:
                with lock:
                    instances: list[bytes] = next(gen).instances
                    return instances

            batches = [next_batch for _ in range(study_count)]
            stats, elapsed = asyncio.run(
                stow_batches(server, batches, STOW_CONCURRENCY, progress_every_s=15)
            )
            print(
                f"[{server.name}] stored {stats.instances} in {elapsed:.0f} s"
                f" ({stats.instances / elapsed:.0f} instances/s), {stats.failed_instances} failed",
                flush=True,
            )
            if stats.first_error:
                print(f"  first failure: {stats.first_error}")
            entry: dict[str, Any] = {
                "name": server.name,
                "config": server.config,
                "stored": stats.instances,
                "failed": stats.failed_instances,
                "store_seconds": elapsed,
                "queries": {},
            }
            failed |= stats.failed_instances > 0
            server.fresh_auth()
            headers = {**server.headers, "Accept": ACCEPT_JSON, "Accept-Encoding": "identity"}
            script_dir = Path(work) / f"lua-{server.name}"
            script_dir.mkdir()
            for kind, paths in kinds.items():
                empty = 0
                for p in paths[:20]:  # spot check: every query must find something
                    status, _, body = http_request("GET", server.base + p, headers)
                    if status != 200 or not json.loads(body or b"[]"):
                        empty += 1
                script = write_wrk_script(
                    script_dir / f"{kind}.lua", [server.root + p for p in paths], headers
                )
                eof = eof_delimited(server, paths[0], ACCEPT_JSON)
                single = run_wrk(server.origin, script, 1, args.duration, eof)
                loaded = run_wrk(server.origin, script, QIDO_CONNECTIONS, args.duration, eof)
                server.check_alive()
                failed |= bool(single.errors or loaded.errors or empty)
                entry["queries"][kind] = {
                    "example": paths[0],
                    "spot_check_empty_or_failed": empty,
                    "c1": {**asdict(single), "requests_per_s": single.requests / single.elapsed_s},
                    "c8": {**asdict(loaded), "requests_per_s": loaded.requests / loaded.elapsed_s},
                }
                print(
                    f"  {kind:<20} c1 p50 {single.p50_ms:7.2f} ms"
                    f" ({single.requests / single.elapsed_s:6.0f}/s) |"
                    f" c{QIDO_CONNECTIONS} p50 {loaded.p50_ms:7.2f} ms"
                    f" p99 {loaded.p99_ms:7.2f} ms ({loaded.requests / loaded.elapsed_s:6.0f}/s)"
                    f"  errors {single.errors + loaded.errors}, empty {empty}/20",
                    flush=True,
                )
            worst = max(q["c8"]["p50_ms"] for q in entry["queries"].values())
            entry["worst_c8_p50_ms"] = worst
            entry["target_met"] = worst <= SCALE_TARGET_P50_MS
            print(
                f"[{server.name}] worst QIDO p50 at {QIDO_CONNECTIONS} connections:"
                f" {worst:.2f} ms (target <= {SCALE_TARGET_P50_MS:.0f} ms:"
                f" {'met' if entry['target_met'] else 'MISSED'})",
                flush=True,
            )
            out["scale"]["servers"].append(entry)
    SCALE_RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    SCALE_RESULTS_FILE.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results written to {SCALE_RESULTS_FILE.relative_to(REPO_ROOT)}")
    return 1 if failed else 0


# ------------------------------------------------------------------- --big mode


class RssSampler:
    """Samples the summed VmRSS of a process group every `interval` seconds in a thread."""

    def __init__(self, pgid: int, interval: float = 0.05) -> None:
        self.pgid, self.interval = pgid, interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids, refreshed = _group_pids(self.pgid), time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - refreshed > 1.0:  # workers may come and go
                pids, refreshed = _group_pids(self.pgid), time.monotonic()
            self.peak = max(self.peak, group_rss_bytes(pids))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


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


def run_big(args: argparse.Namespace, meta: dict[str, Any], orthanc: dict[str, str] | None) -> int:
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
        servers = start_servers(stack, args.only, Path(work), args.workers, orthanc)
        for server in servers:
            server.fresh_auth()
            # One small request first, so lazily loaded code is in the baseline.
            http_request(
                "GET", f"{server.base}/studies?limit=1", {**server.headers, "Accept": ACCEPT_JSON}
            )
            time.sleep(1.0)
            baseline = group_rss_bytes(_group_pids(server.proc.pid))
            print(f"\n[{server.name}] RSS before: {baseline / MB:.0f} MB; storing...", flush=True)
            with RssSampler(server.proc.pid) as store_rss:
                status, body, store_s = asyncio.run(big_store(server, big))
            stored = stow_failures(status, body, 1) == 0
            print(
                f"[{server.name}] STOW -> HTTP {status} in {store_s:.1f} s"
                f" ({big.dicom_size / MB / store_s:.0f} MB/s); peak RSS"
                f" +{(store_rss.peak - baseline) / MB:.0f} MB",
                flush=True,
            )
            if not stored:
                print(f"  response: {body[:400]!r}")
            server.fresh_auth()
            after_store = group_rss_bytes(_group_pids(server.proc.pid))
            with RssSampler(server.proc.pid) as get_rss:
                get_status, digest, size, total, get_s = asyncio.run(big_retrieve(server, big))
            identical = digest == big.dicom_sha256 and size == big.dicom_size
            print(
                f"[{server.name}] WADO -> HTTP {get_status} in {get_s:.1f} s"
                f" ({total / MB / get_s:.0f} MB/s), byte-identical: {identical}; peak RSS"
                f" +{(get_rss.peak - baseline) / MB:.0f} MB",
                flush=True,
            )
            server.check_alive()
            growth = max(store_rss.peak, get_rss.peak) - baseline
            entry = {
                "name": server.name,
                "config": server.config,
                "rss_baseline_bytes": baseline,
                "rss_after_store_bytes": after_store,
                "store": {
                    "status": status,
                    "ok": stored,
                    "seconds": store_s,
                    "peak_rss_growth_bytes": store_rss.peak - baseline,
                },
                "retrieve": {
                    "status": get_status,
                    "byte_identical": identical,
                    "seconds": get_s,
                    "response_bytes": total,
                    "peak_rss_growth_bytes": get_rss.peak - baseline,
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
    BIG_RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    BIG_RESULTS_FILE.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results written to {BIG_RESULTS_FILE.relative_to(REPO_ROOT)}")
    return 1 if failed else 0


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
        "--studies",
        type=int,
        default=50,
        help="corpus studies (x 4 series x 10 instances of 512x512)",
    )
    parser.add_argument("--workers", type=int, default=2, help="Dicomite worker processes")
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
    parser.add_argument("--scale-instances", type=int, default=100_000)
    parser.add_argument("--big-mib", type=int, default=1024, help="pixel data MiB (--big)")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 600:
        parser.error("--duration must be 1..600 s and --warmup 0..600 s")
    if not 1 <= args.rounds <= 50:
        parser.error("--rounds must be 1..50")
    if not args.rounds + 1 <= args.studies <= 10_000:
        parser.error("--studies must be at least --rounds + 1 (and at most 10000)")
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if not 10 <= args.scale_instances <= 1_000_000:
        parser.error("--scale-instances must be 10..1000000")
    if not 1 <= args.big_mib <= 3000:
        parser.error("--big-mib must be 1..3000")
    if args.only is None:
        args.only = "dicomite" if args.scale else "all"
    return args


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so every `finally` stops its server.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    sys.path.insert(0, str(BENCH_DIR))  # dicom_corpus lives beside this file
    meta: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": platform.python_version(),
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
        },
    }
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
            return run_big(args, meta, orthanc)
        return run_main(args, meta, orthanc)
    except DicomiteNotReadyError as exc:
        print(f"\n{exc}\n(run with --only peer to measure Orthanc alone)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
