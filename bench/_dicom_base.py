"""DICOM benchmark: constants, the started-server handle and the measurement records."""

from __future__ import annotations

import json
import ssl
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _processes import RESULTS_DIR

CACHE_DIR = RESULTS_DIR / "dicom-cache"
DEFAULT_STUDIES = {512: 90, 128: 300}  # 3,600 files of ~0.5 MB; 12,000 of ~33 kB
SCALE_RESULTS_FILE = RESULTS_DIR / "dicom_scale.json"
BIG_RESULTS_FILE = RESULTS_DIR / "dicom_big.json"

PEER_NAME = "orthanc"
DICOMITE_NAME = "dicomite"
HTTPS_NAME = "dicomite-https"  # Dicomite at its default TLS (the main mode, unless --no-https)
REFERENCE_NAME = "sendfile-reference"  # whole-study WADO's zero-copy reference (_wado_reference)
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

UNITS = {"stow": "instances/s", "qido": "requests/s", "wado": "MB/s", "metadata": "requests/s"}
KINDS = ("stow", "qido", "metadata", "wado")
TARGETS = {"stow": 2.0, "qido": 5.0, "wado": 1.5, "metadata": 5.0}  # Dicomite/Orthanc
SCALE_TARGET_P50_MS = 20.0  # every --scale query kind at QIDO_CONNECTIONS connections
BIG_TARGET_RSS_GROWTH_MB = 200.0
SCALE_SERIES_PER_STUDY = 2
SCALE_INSTANCES_PER_SERIES = 5
READY_TIMEOUT_S = 120.0
STOP_GRACE_S = 15.0
MB = 1_000_000  # MB/s and RSS growth are in units of 10^6 bytes

# The bench's trust store: the system's CAs plus the CA each HTTPS Dicomite generated in its
# data folder (trust()). Every client of the bench verifies against it, as a user's would;
# wrk, which does not verify certificates, is the one exception.
TRUST = ssl.create_default_context()


def trust(ca_file: Path) -> None:
    TRUST.load_verify_locations(cafile=ca_file)


def results_file(size: int) -> Path:
    """Where the default mode's results on the corpus of `size` x `size` images go."""
    return RESULTS_DIR / f"dicom_throughput-{size}px.json"


# --------------------------------------------------------------------------- data


@dataclass
class Server:
    """A started, verified server and what is needed to send it DICOMweb requests."""

    name: str
    config: str
    origin: str  # http://127.0.0.1:PORT, or https:// for Dicomite at its default
    root: str  # DICOMweb path prefix without trailing slash, e.g. /dicom/v2
    proc: subprocess.Popen[bytes]
    log_path: Path
    headers: dict[str, str] = field(default_factory=dict)  # Authorization for Dicomite
    refresh_auth: Callable[[], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    kinds: tuple[str, ...] = KINDS  # what it is measured on

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
        with urllib.request.urlopen(req, timeout=timeout, context=TRUST) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


OPERATION_TIMEOUT_S = 3_600.0


def run_operation(server: Server, path: str, body: Any) -> tuple[float, dict[str, Any]]:
    """POST ``body`` to ``path`` (an endpoint starting a long-running operation) and poll the
    operation until it answers 200: the seconds from the POST, and its last state."""
    headers = {**server.headers, "Content-Type": "application/json", "Accept": "application/json"}
    started = time.perf_counter()
    status, _, answer = http_request(
        "POST", f"{server.base}{path}", headers, json.dumps(body).encode()
    )
    if status != 202:
        raise SystemExit(f"POST {path} answered {status}: {answer[:300]!r}")
    href = json.loads(answer)["href"]
    while time.perf_counter() - started < OPERATION_TIMEOUT_S:
        status, _, answer = http_request("GET", href, server.headers)
        if status == 200:
            return time.perf_counter() - started, json.loads(answer)
        if status != 202:
            raise SystemExit(f"the operation answered {status}: {answer[:300]!r}")
        time.sleep(0.05)
    raise SystemExit(f"the operation of POST {path} did not finish in time")
