"""Process plumbing shared by the benchmarks: free ports, process groups, readiness.

Every server runs in its own process group (start_new_session=True), so it and
its workers are stopped together: SIGTERM to the group, SIGKILL after a grace
period. Linux /proc gives the CPU time and RSS of a group.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

HOST = "127.0.0.1"  # loopback only: the benchmarks never send traffic elsewhere


def apt_install(packages: Sequence[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing with apt-get: {' '.join(packages)}", flush=True)
    # A fresh machine may have empty apt lists, so update before installing.
    subprocess.run(["apt-get", "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", *packages], check=True, env=env)


def dicomite_executable() -> Path:
    local = REPO_ROOT / ".venv" / "bin" / "dicomite"
    if local.exists():
        return local
    found = shutil.which("dicomite")
    if found is None:
        raise SystemExit("dicomite is not installed (expected .venv/bin/dicomite)")
    return Path(found)


def base_meta() -> dict[str, Any]:
    """The first keys of every results JSON: when, on what machine, which Python."""
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": platform.python_version(),
    }


def raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so every `finally` stops its server.
    raise SystemExit(128 + signum)


def free_port() -> int:
    """A currently free loopback port (the OS picks it when binding to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_pids(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process exited while we looked
            continue
        # Fields after the parenthesised command name (which may contain spaces):
        # state ppid pgrp ...
        if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def group_cpu_seconds(pgid: int) -> float | None:
    """User+system CPU seconds of the live processes in process group `pgid` (Linux /proc)."""
    if not Path("/proc").is_dir():
        return None
    ticks = 0
    for pid in group_pids(pgid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_diff(before: list[float | None], after: list[float | None]) -> float | None:
    """CPU seconds used between two group_cpu_seconds() snapshots; None if unknown."""
    total = 0.0
    for b, a in zip(before, after, strict=True):
        if a is None or b is None:
            return None
        total += max(0.0, a - b)
    return total


def group_rss_bytes(pids: Sequence[int], field: str = "VmRSS") -> int:
    """Sum of VmRSS (or another kB `field`, e.g. VmHWM) over `pids` (/proc/<pid>/status)."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(rf"^{field}:\s+(\d+)\s+kB", status, re.MULTILINE)
        if match:
            total += int(match[1]) * 1024
    return total


def reset_peak_rss(pids: Sequence[int]) -> None:
    """Set each process's VmHWM (peak RSS) to its current RSS: `5` to clear_refs, proc(5)."""
    for pid in pids:
        with contextlib.suppress(OSError):  # exited meanwhile, or not ours to reset
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the server's whole process group, SIGKILL it after a grace period."""
    pgid = proc.pid  # start_new_session=True made the server its group leader
    if proc.poll() is None:
        _signal_group(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            print(f"  pid {proc.pid} ignored SIGTERM for {grace_s:.0f} s: SIGKILL", flush=True)
    _signal_group(pgid, signal.SIGKILL)  # also reap workers that outlived their parent
    proc.wait()


@contextlib.contextmanager
def running_process(
    command: list[str], env: dict[str, str], log_path: Path, *, cwd: Path, grace_s: float
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own process group; always stop it on the way out."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, so workers die with it
        )
        try:
            yield proc
        finally:
            stop_process(proc, grace_s)


def wait_ready(
    proc: subprocess.Popen[bytes],
    url: str,
    log_path: Path,
    timeout_s: float,
    context: ssl.SSLContext | None = None,
) -> None:
    """Poll `url` until it answers 200; fail early if the server process exits. `context`
    verifies an https `url`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
        # Connection refused / HTTP errors (both OSError) just mean "not yet".
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=2, context=context) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s; see {log_path}")


def wait_for_file(
    proc: subprocess.Popen[bytes], path: Path, log_path: Path, timeout_s: float
) -> Path:
    """Wait until the server process has written `path` (e.g. a CA it generates on start)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return path
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
        time.sleep(0.1)
    raise RuntimeError(f"{path} not written after {timeout_s:.0f} s; see {log_path}")


def alternating(items: Sequence[Any], number: int) -> list[Any]:
    """Round `number`'s order: as given in odd rounds, reversed in even ones."""
    return list(items) if number % 2 else list(items[::-1])
