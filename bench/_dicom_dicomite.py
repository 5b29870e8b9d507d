"""Dicomite under test: a registered DICOM client, a bearer token, the server itself."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import urllib.parse
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _baseline import BASELINE_NAME, Baseline
from _dicom_base import (
    ACCEPT_JSON,
    DICOM_SCOPE,
    DICOMITE_NAME,
    READY_TIMEOUT_S,
    STOP_GRACE_S,
    TRUST,
    Server,
    http_request,
    trust,
)
from _dicom_orthanc import start_orthanc
from _processes import (
    HOST,
    REPO_ROOT,
    RESULTS_DIR,
    dicomite_executable,
    free_port,
    running_process,
    wait_for_file,
    wait_ready,
)


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


def start_dicomite(
    stack: contextlib.ExitStack,
    data_dir: Path,
    workers: int | None,
    extra_args: Sequence[str] = (),
    baseline: Baseline | None = None,
    database_url: str | None = None,
    https: bool = False,
) -> Server:
    """`dicomite serve --http` on a free port; `workers` None keeps the server's default.
    `baseline`: run that earlier commit's installed code instead (named "baseline").
    `database_url`: a PostgreSQL database instead of the data folder's SQLite file (the
    server is then named "dicomite-postgres"). `https`: without `--http`, i.e. over the TLS
    Dicomite serves by default, its generated CA trusted by the bench ("dicomite-https")."""
    exe = baseline.executable if baseline else dicomite_executable()
    name = BASELINE_NAME if baseline else DICOMITE_NAME
    name += "-postgres" if database_url else ""
    name += "-https" if https else ""
    port, tenant = free_port(), str(uuid.uuid4())
    origin = f"{'https' if https else 'http'}://{HOST}:{port}"
    env = {
        **os.environ,
        "DICOMITE_BOOTSTRAP_CLIENT_ID": str(uuid.uuid4()),
        "DICOMITE_BOOTSTRAP_CLIENT_SECRET": secrets.token_urlsafe(40),
        "DICOMITE_TENANT_ID": tenant,
        **({"DICOMITE_DATABASE_URL": database_url} if database_url else {}),
    }
    # The CLI works on the data folder directly: register the client before serving.
    client_id, secret = register_dicom_client(exe, data_dir, env)
    command = [str(exe), "serve", "--data-dir", str(data_dir), "--host", HOST]
    command += ["--port", str(port), *([] if https else ["--http"])]
    command += ["--public-url", origin, *extra_args]
    command += ["--workers", str(workers)] if workers is not None else []
    log_path = RESULTS_DIR / f"{name}-dicom.log"
    print(f"\n[{name}] starting: {' '.join(command)}  (log: {log_path})", flush=True)
    cwd = baseline.tree if baseline else REPO_ROOT
    proc = stack.enter_context(
        running_process(command, env, log_path, cwd=cwd, grace_s=STOP_GRACE_S)
    )
    if https:
        trust(wait_for_file(proc, data_dir / "tls" / "ca.pem", log_path, READY_TIMEOUT_S))
    ready_url = f"{origin}/{tenant}/v2.0/.well-known/openid-configuration"
    wait_ready(proc, ready_url, log_path, READY_TIMEOUT_S, TRUST)
    token_url = f"{origin}/{tenant}/oauth2/v2.0/token"
    count = f"--workers {workers}" if workers is not None else "default workers (no --workers)"
    code = f"commit {baseline.commit[:12]} ({baseline.ref})" if baseline else "this checkout"
    server = Server(
        name=name,
        config=f"{code}, {count}, {'HTTPS' if https else 'plain HTTP'},"
        f" {'PostgreSQL' if database_url else 'SQLite'}"
        " + folder blob store",
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
    print(f"[{name}] ready at {server.base} (empty STOW probe -> {status})", flush=True)
    return server


def start_servers(
    stack: contextlib.ExitStack,
    only: str,
    work: Path,
    workers: int | None,
    orthanc: dict[str, str] | None,
    baseline: Baseline | None = None,
    https: bool = False,
) -> list[Server]:
    """The peer, the baseline (if any), then Dicomite, and with `https` Dicomite at its
    default TLS too; all stay up (stopped by `stack`).

    Dicomite runs at its defaults unless `workers` is given; the baseline, whose old default
    was one worker, gets `workers` or as many as Dicomite's default (one per usable core)."""
    servers = []
    if only in ("all", "peer"):
        assert orthanc is not None
        servers.append(start_orthanc(stack, work / "orthanc", orthanc))
    if only in ("all", "dicomite") and baseline is not None:
        count = workers if workers is not None else len(os.sched_getaffinity(0))
        servers.append(start_dicomite(stack, work / BASELINE_NAME, count, baseline=baseline))
    if only in ("all", "dicomite"):
        servers.append(start_dicomite(stack, work / "dicomite", workers))
    if only in ("all", "dicomite") and https:
        servers.append(start_dicomite(stack, work / "dicomite-https", workers, https=True))
    return servers


# ------------------------------------------------------------------ STOW client
