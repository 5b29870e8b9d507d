"""``dicomite dicom upload|search|get|partitions`` (and ``tags``, ``operations``:
``dicom_manage``): a DICOMweb client of a running server; ``--partition`` names the data
partition of ``upload``, ``search`` and ``get``.

It authenticates like any service client: a client-credentials token for the DICOM resource
(``dicomite token get`` does the same request), then plain STOW-RS, QIDO-RS and WADO-RS calls.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from email.parser import BytesParser
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import pydicom
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dicomite.cli import dicom_manage
from dicomite.cli.console import console
from dicomite.cli.dicom_session import (
    Connection,
    PartitionName,
    Session,
    connected,
    in_partition,
)
from dicomite.cli.dicom_table import COLUMNS, results_table
from dicomite.cli.shared import escape, fail, print_json, say

app = typer.Typer(help="Store, search and retrieve DICOM data (DICOMweb).", no_args_is_help=True)
app.add_typer(dicom_manage.tags, name="tags")
app.add_typer(dicom_manage.operations, name="operations")
app.command("export")(dicom_manage.export)
app.command("update")(dicom_manage.update)

DUPLICATE, FAILED_SEQUENCE, REASON = 45070, "00081198", "00081197"
UNBOUNDED_WIDTH = 10_000
# A failed instance's explanation: ErrorComment (0000,0902), at the item's top level or in the
# items of its FailedAttributesSequence (0074,1048), as the conformance statement shows it.
ERROR_COMMENT, FAILED_ATTRIBUTES = "00000902", "00741048"
REASONS = {
    272: "processing failure",
    43264: "validation failure",
    43265: "study UID mismatch",
    45070: "already present",
    45071: "being created",
}


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


@dataclass
class Summary:
    stored: int = 0
    present: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def count(self, path: Path, outcome: str, reason: str | None) -> None:
        if outcome == "stored":
            self.stored += 1
        elif outcome == "present":
            self.present += 1
        else:
            self.failed[str(path)] = reason or "failed"


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            yield path
        else:
            fail(f"{path} is neither a file nor a folder.")


def _sop_instance_uid(path: Path) -> str | None:
    """The file's SOP Instance UID, if pydicom can read one from its header."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about files it reads anyway
        try:
            dataset = pydicom.dcmread(
                path,
                stop_before_pixels=True,
                specific_tags=["SOPInstanceUID"],
                defer_size=1024,
                force=True,
            )
        except Exception:  # any file pydicom cannot read goes alone; STOW says why
            return None
    value = dataset.get("SOPInstanceUID")
    return str(value) if value else None


def same_instance_groups(files: list[Path]) -> list[list[Path]]:
    """The files grouped by SOP Instance UID, each group in path order. A group's files are
    stored one after another: sent at the same time, all but one would fail with 45071 (being
    created by another request), a different one each run."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        uid = _sop_instance_uid(path)
        groups.setdefault(f"uid:{uid}" if uid else f"file:{path}", []).append(path)
    return list(groups.values())


def _comments(item: dict[str, Any]) -> list[str]:
    """The ErrorComments of one FailedSOPSequence item."""
    found = [item.get(ERROR_COMMENT, {})]
    found += [a.get(ERROR_COMMENT, {}) for a in item.get(FAILED_ATTRIBUTES, {}).get("Value", [])]
    return [str(text) for element in found for text in element.get("Value", []) if text]


def _failure(item: dict[str, Any]) -> str:
    """``43264 (validation failure): <the server's ErrorComment>``."""
    code = item.get(REASON, {}).get("Value", [0])[0]
    reason = f"{code} ({REASONS.get(code, 'failure')})"
    comments = _comments(item)
    return f"{reason}: {'; '.join(comments)}" if comments else reason


def _stow_outcome(response: httpx.Response) -> tuple[str, str | None]:
    """A 202/409 STOW answer: its FailedSOPSequence decides."""
    try:
        failed = response.json().get(FAILED_SEQUENCE, {}).get("Value", [])
    except ValueError:
        return "failed", f"HTTP {response.status_code}: {response.text[:500]}"
    if [item.get(REASON, {}).get("Value", [0])[0] for item in failed] == [DUPLICATE]:
        return "present", None
    if failed:
        return "failed", ", ".join(_failure(item) for item in failed)
    return "stored", None


def _upload_one(session: Session, path: Path) -> tuple[str, str | None]:
    """``("stored" | "present" | "failed", reason)``."""
    try:
        with path.open("rb") as handle:
            response = session.client.post(
                f"{session.base}/studies",
                content=handle,
                headers={"Content-Type": "application/dicom", "Accept": "application/dicom+json"},
            )
    except (OSError, httpx.HTTPError) as error:
        return "failed", str(error)
    if response.status_code == 200:
        return "stored", None
    if response.status_code in (202, 409) and response.content:
        return _stow_outcome(response)
    return "failed", f"HTTP {response.status_code}: {response.text[:500]}"


def _upload_group(session: Session, paths: list[Path]) -> list[tuple[Path, str, str | None]]:
    return [(path, *_upload_one(session, path)) for path in paths]


@app.command()
@connected
def upload(
    connection: Connection,
    paths: Annotated[list[Path], typer.Argument(help="DICOM files and folders (recursive)")],
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            min=1,
            max=64,
            help="Files sent at once (files of one SOP Instance UID go one after another)",
        ),
    ] = 4,
    partition: PartitionName = None,
) -> None:
    """Store files with STOW-RS, several at once, and summarise what happened."""
    files = list(_files(paths))
    session = in_partition(
        connection.open(),
        partition,
    )
    summary = Summary()
    columns = (TextColumn("Uploading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        session.client,
        Progress(*columns, transient=True) as progress,
        ThreadPoolExecutor(concurrency) as pool,
    ):
        task = progress.add_task("upload", total=len(files))
        groups = same_instance_groups(files)
        futures = [pool.submit(_upload_group, session, group) for group in groups]
        for future in as_completed(futures):
            for path, outcome, reason in future.result():
                summary.count(path, outcome, reason)
                progress.advance(task)
    counts = f"stored: {summary.stored}  already present: {summary.present}"
    say(f"{counts}  failed: {len(summary.failed)}")
    for name, reason in sorted(summary.failed.items()):
        say(f"  [red]failed[/red] {escape(name)}: {escape(reason)}")
    if summary.failed:
        raise typer.Exit(1)


@app.command()
@connected
def search(
    connection: Connection,
    level: Annotated[str, typer.Option("--level", help="studies, series or instances")] = "studies",
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="KEYWORD=VALUE (repeatable)")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    output: Annotated[
        Output | None,
        typer.Option(
            "--output",
            "-o",
            show_default=False,
            help="table or json (DICOM JSON) \\[default: table on a terminal, else json]",
        ),
    ] = None,
    partition: PartitionName = None,
) -> None:
    """Search with QIDO-RS: a table of the matches, or their DICOM JSON."""
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
    wanted = output or (Output.TABLE if console.is_terminal else Output.JSON)
    if wanted is Output.TABLE:  # the table's columns, some of which QIDO returns only if asked
        params += [("includefield", keyword) for _, keyword in COLUMNS[level]]
    session = in_partition(
        connection.open(),
        partition,
    )
    with session.client:
        response = session.client.get(f"{session.base}/{level}", params=params)
    if response.status_code not in (200, 204):
        fail(f"HTTP {response.status_code}: {response.text[:500]}")
    _show_results(level, response.json() if response.status_code == 200 else [], wanted)


def _show_results(level: str, results: list[dict[str, Any]], wanted: Output) -> None:
    if wanted is Output.JSON:
        print_json(results)
    elif not results:
        say(f"No {level} match.")
    else:
        table = results_table(level, results)
        (console if console.is_terminal else _natural_console(table)).print(table)


def _natural_console(table: Table) -> Console:
    """Piped, a table keeps the width its cells want: no UID is folded at 80 columns."""
    unbounded = console.options.update_width(UNBOUNDED_WIDTH)
    return Console(width=console.measure(table, options=unbounded).maximum, soft_wrap=True)


@app.command()
@connected
def get(
    connection: Connection,
    study: Annotated[str, typer.Argument(help="StudyInstanceUID")],
    series: Annotated[str | None, typer.Argument(help="SeriesInstanceUID")] = None,
    instance: Annotated[str | None, typer.Argument(help="SOPInstanceUID")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the files")] = Path(
        "."
    ),
    metadata: Annotated[bool, typer.Option("--metadata", help="Print metadata instead")] = False,
    partition: PartitionName = None,
) -> None:
    """Retrieve a study, series or instance as stored (transfer-syntax=*) into a folder."""
    path = f"/studies/{study}" + (f"/series/{series}" if series else "")
    path += f"/instances/{instance}" if instance and series else ""
    session = in_partition(
        connection.open(),
        partition,
    )
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


@app.command()
@connected
def partitions(
    connection: Connection,
) -> None:
    """The data partitions: a table on a terminal, their JSON when piped."""
    session = connection.open()
    with session.client:
        response = session.client.get(f"{session.base}/partitions")
    if response.status_code not in (200, 204):
        fail(f"HTTP {response.status_code}: {escape(response.text[:500])}")
    found = response.json() if response.status_code == 200 else []
    if not console.is_terminal:
        print_json(found)
        return
    table = Table("Key", "Name", "Created")
    for item in found:
        table.add_row(str(item["partitionKey"]), item["partitionName"], item["createdDate"])
    console.print(table if found else "No partitions.")


def _parts(response: httpx.Response) -> list[bytes]:
    head = b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n"
    message = BytesParser().parsebytes(head + response.content)
    payloads: Any = message.get_payload()
    return [part.get_payload(decode=True) for part in payloads]


__all__ = ["app", "json"]
