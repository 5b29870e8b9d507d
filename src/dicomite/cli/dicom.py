"""``dicomite dicom upload|search|get``: a DICOMweb client of a running server.

It authenticates like any service client: a client-credentials token for the DICOM resource
(``dicomite token get`` does the same request), then plain STOW-RS, QIDO-RS and WADO-RS calls.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from email.parser import BytesParser
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dicomite.cli._shared import DatabaseUrl, DataDir, escape, fail, print_json, say
from dicomite.cli.options import build_settings
from dicomite.cli.token import _authority, _secret, _trust, request_token

app = typer.Typer(help="Store, search and retrieve DICOM data (DICOMweb).", no_args_is_help=True)

ClientId = Annotated[str, typer.Option("--client-id", help="Application (client) ID")]
ClientSecret = Annotated[
    str, typer.Option("--client-secret", help="Client secret ('-' reads stdin)")
]
Url = Annotated[
    str | None, typer.Option("--url", help="DICOM service base [{public_url}/dicom/v1]")
]
Authority = Annotated[
    str | None, typer.Option("--authority", help="{public_url}/{tenant} [this deployment's]")
]
CaFile = Annotated[Path | None, typer.Option("--ca-file", help="CA to trust [DATA_DIR/tls/ca.pem]")]
DUPLICATE, FAILED_SEQUENCE, REASON = 45070, "00081198", "00081197"
REASONS = {
    272: "processing failure",
    43264: "validation failure",
    43265: "study UID mismatch",
    45070: "already present",
    45071: "being created",
}


@dataclass
class Session:
    client: httpx.Client
    base: str


def _session(
    client_id: str, client_secret: str, url: str | None, authority: str | None,
    ca_file: Path | None, data_dir: Path | None, database_url: str | None,
) -> Session:  # fmt: skip
    settings = build_settings(data_dir=data_dir, database_url=database_url)
    base = (url or f"{settings.effective_public_url}/dicom/v1").rstrip("/")
    issuer = authority or _authority(settings, data_dir, database_url)
    token_url = f"{issuer.rstrip('/')}/oauth2/v2.0/token"
    verify: ssl.SSLContext | bool = _trust(settings, base, ca_file)
    form = {"grant_type": "client_credentials", "client_id": client_id,
            "client_secret": _secret(client_secret),
            "scope": f"{settings.dicom_resource_uri}/.default"}  # fmt: skip
    token = request_token(token_url, form, _trust(settings, token_url, ca_file))
    headers = {"Authorization": f"Bearer {token}"}
    return Session(httpx.Client(verify=verify, headers=headers, timeout=300), base)


@dataclass
class Summary:
    stored: int = 0
    present: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            yield path
        else:
            fail(f"{path} is neither a file nor a folder.")


def _upload_one(session: Session, path: Path) -> tuple[str, str | None]:
    """``("stored" | "present" | "failed", reason)``."""
    try:
        with path.open("rb") as handle:
            response = session.client.post(
                f"{session.base}/studies", content=handle,
                headers={"Content-Type": "application/dicom", "Accept": "application/dicom+json"},
            )  # fmt: skip
    except (OSError, httpx.HTTPError) as error:
        return "failed", str(error)
    if response.status_code == 200:
        return "stored", None
    if response.status_code in (202, 409) and response.content:
        failed = response.json().get(FAILED_SEQUENCE, {}).get("Value", [])
        codes = [item.get(REASON, {}).get("Value", [0])[0] for item in failed]
        if codes == [DUPLICATE]:
            return "present", None
        if codes:
            return "failed", ", ".join(f"{c} ({REASONS.get(c, 'failure')})" for c in codes)
        return "stored", None
    return "failed", f"HTTP {response.status_code}: {response.text[:200]}"


@app.command()
def upload(
    paths: Annotated[list[Path], typer.Argument(help="DICOM files and folders (recursive)")],
    client_id: ClientId,
    client_secret: ClientSecret,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64)] = 4,
    url: Url = None,
    authority: Authority = None,
    ca_file: CaFile = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Store files with STOW-RS, several at once, and summarise what happened."""
    files = list(_files(paths))
    session = _session(client_id, client_secret, url, authority, ca_file, data_dir, database_url)
    summary = Summary()
    columns = (TextColumn("Uploading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        session.client,
        Progress(*columns, transient=True) as progress,
        ThreadPoolExecutor(concurrency) as pool,
    ):
        task = progress.add_task("upload", total=len(files))
        futures = {pool.submit(_upload_one, session, path): path for path in files}
        for future in as_completed(futures):
            outcome, reason = future.result()
            if outcome == "stored":
                summary.stored += 1
            elif outcome == "present":
                summary.present += 1
            else:
                summary.failed[str(futures[future])] = reason or "failed"
            progress.advance(task)
    counts = f"stored: {summary.stored}  already present: {summary.present}"
    say(f"{counts}  failed: {len(summary.failed)}")
    for name, reason in sorted(summary.failed.items()):
        say(f"  [red]failed[/red] {escape(name)}: {escape(reason)}")
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def search(
    client_id: ClientId,
    client_secret: ClientSecret,
    level: Annotated[str, typer.Option("--level", help="studies, series or instances")] = "studies",
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="KEYWORD=VALUE (repeatable)")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    url: Url = None,
    authority: Authority = None,
    ca_file: CaFile = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Search with QIDO-RS and print the DICOM JSON results."""
    if level not in ("studies", "series", "instances"):
        fail("--level must be studies, series or instances.")
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("limit", str(limit)),
        ("offset", str(offset)),
    ]
    for item in filters or []:
        name, equals, value = item.partition("=")
        if not equals:
            fail(f"--filter {item!r} is not KEYWORD=VALUE.")
        params.append((name, value))
    session = _session(client_id, client_secret, url, authority, ca_file, data_dir, database_url)
    with session.client:
        response = session.client.get(f"{session.base}/{level}", params=params)
    if response.status_code == 204:
        print_json([])
        return
    if response.status_code != 200:
        fail(f"HTTP {response.status_code}: {response.text[:500]}")
    print_json(response.json())


@app.command()
def get(
    study: Annotated[str, typer.Argument(help="StudyInstanceUID")],
    client_id: ClientId,
    client_secret: ClientSecret,
    series: Annotated[str | None, typer.Argument(help="SeriesInstanceUID")] = None,
    instance: Annotated[str | None, typer.Argument(help="SOPInstanceUID")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the files")] = Path(
        "."
    ),
    metadata: Annotated[bool, typer.Option("--metadata", help="Print metadata instead")] = False,
    url: Url = None,
    authority: Authority = None,
    ca_file: CaFile = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Retrieve a study, series or instance as stored (transfer-syntax=*) into a folder."""
    path = f"/studies/{study}" + (f"/series/{series}" if series else "")
    path += f"/instances/{instance}" if instance and series else ""
    session = _session(client_id, client_secret, url, authority, ca_file, data_dir, database_url)
    with session.client:
        if metadata:
            response = session.client.get(f"{session.base}{path}/metadata")
            if response.status_code != 200:
                fail(f"HTTP {response.status_code}: {response.text[:500]}")
            print_json(response.json())
            return
        accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
        response = session.client.get(f"{session.base}{path}", headers={"Accept": accept})
    if response.status_code != 200:
        fail(f"HTTP {response.status_code}: {response.text[:500]}")
    output.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, data in enumerate(_parts(response), start=1):
        (output / f"instance-{count:05d}.dcm").write_bytes(data)
    say(f"{count} instance(s) written to {escape(str(output))}")


def _parts(response: httpx.Response) -> list[bytes]:
    head = b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n"
    message = BytesParser().parsebytes(head + response.content)
    payloads: Any = message.get_payload()
    return [part.get_payload(decode=True) for part in payloads]


__all__ = ["app", "json"]
