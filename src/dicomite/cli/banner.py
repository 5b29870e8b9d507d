"""What ``dicomite serve`` prints before it starts serving: where things are, never a secret."""

from __future__ import annotations

import json
from pathlib import Path

from dicomite.cli.console import console
from dicomite.settings import Settings
from dicomite.viewer.install import installed_folder
from dicomite.viewer.package import OHIF_APP


def _saved_keys(path: Path) -> set[str]:
    """The names of the values saved in bootstrap-credentials.json (not the values)."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    return set(saved) if isinstance(saved, dict) else set()


def _admin_hint(settings: Settings, saved: set[str]) -> str:
    if "admin_password" in saved:
        return f"admin_username and admin_password in {settings.bootstrap_file}"
    if settings.bootstrap_admin_password:
        return "DICOMITE_BOOTSTRAP_ADMIN_USERNAME and DICOMITE_BOOTSTRAP_ADMIN_PASSWORD"
    return "a Global Administrator's account (the bootstrap one is no longer needed)"


def _client_hint(settings: Settings, saved: set[str]) -> str:
    if "client_secret" in saved:
        return f"client_id and client_secret in {settings.bootstrap_file}"
    return "DICOMITE_BOOTSTRAP_CLIENT_ID and DICOMITE_BOOTSTRAP_CLIENT_SECRET"


def _viewer_line(settings: Settings, refusal: str | None) -> str:
    if refusal:
        return f"  Viewer:            sign-in cannot work at this address: {refusal}"
    if installed_folder(settings.effective_viewer_dir, OHIF_APP) is None:
        return "  Viewer:            not installed (dicomite viewer install)"
    return f"  Viewer:            {settings.effective_public_url}/viewer/"


def banner_lines(settings: Settings, tenant_id: str, viewer_refusal: str | None) -> list[str]:
    base = settings.effective_public_url
    saved = _saved_keys(settings.bootstrap_file)
    lines = [
        f"Dicomite on {base} · tenant {tenant_id} · authority {base}/{tenant_id}",
        f"  Portal:            {base}/portal/",
        f"  Portal sign-in:    {_admin_hint(settings, saved)}",
        f"  Management client: {_client_hint(settings, saved)}",
        f"  DICOMweb:          {base}/dicom/v1 (and /dicom/v2)",
        _viewer_line(settings, viewer_refusal),
    ]
    if not settings.http:
        lines.append(f"  CA to trust:       {settings.ca_file}")
    lines.append(
        "The server now holds this terminal (Ctrl+C stops it): "
        "run other dicomite commands in a second terminal."
    )
    return lines


def print_banner(settings: Settings, tenant_id: str, viewer_refusal: str | None) -> None:
    for line in banner_lines(settings, tenant_id, viewer_refusal):
        console.print(line, highlight=False, markup=False)
