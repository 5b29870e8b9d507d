"""The peer: Orthanc + its DICOMweb plugin from Debian, installed and started by us."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from _dicom_base import (
    ORTHANC_PACKAGES,
    ORTHANC_PLUGIN_DIRS,
    PEER_NAME,
    READY_TIMEOUT_S,
    STOP_GRACE_S,
    Server,
    http_request,
)
from _processes import (
    HOST,
    REPO_ROOT,
    RESULTS_DIR,
    apt_install,
    free_port,
    running_process,
    wait_ready,
)


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
        apt_install(ORTHANC_PACKAGES)
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
    proc = stack.enter_context(
        running_process(command, dict(os.environ), log_path, cwd=REPO_ROOT, grace_s=STOP_GRACE_S)
    )
    origin = f"http://{HOST}:{port}"
    wait_ready(proc, f"{origin}/system", log_path, READY_TIMEOUT_S)
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
