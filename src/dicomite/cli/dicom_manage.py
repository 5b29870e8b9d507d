"""``dicomite dicom tags …``, ``dicomite dicom operations …``, ``dicomite dicom export`` and
``dicomite dicom update``: the DICOM service's extended query tags, long-running operations,
export and bulk update, through its API (``/extendedquerytags``, ``/operations``, ``/export``,
``/studies/$bulkUpdate``), as any service client with ``Dicom.ReadWrite`` (changes) or
``Dicom.Read``."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydicom.datadict import dictionary_VR, tag_for_keyword
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dicomite.cli.console import console
from dicomite.cli.dicom_session import Connection, Session, connected
from dicomite.cli.shared import escape, fail, print_json, say

tags = typer.Typer(help="Extended query tags: search on more attributes.", no_args_is_help=True)
operations = typer.Typer(
    help="Long-running operations (reindexing, export, update).", no_args_is_help=True
)

TagPath = Annotated[str, typer.Argument(help="Keyword (PatientAge) or tag (00101010)")]
Wait = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the operation ends")]
POLL_SECONDS = 0.5


class Level(StrEnum):
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


def _call(session: Session, method: str, path: str, **kwargs: Any) -> Any:
    with session.client:
        response = session.client.request(method, f"{session.base}{path}", **kwargs)
    return _answer(response)


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        fail(f"HTTP {response.status_code}: {escape(response.text[:500])}")
    return response.json() if response.content else None


@tags.command("add")
@connected
def add(
    connection: Connection,
    path: TagPath,
    level: Annotated[Level, typer.Option("--level", help="Where the tag's value is kept")],
    vr: Annotated[str | None, typer.Option("--vr", help="Required for private tags")] = None,
    private_creator: Annotated[
        str | None, typer.Option("--private-creator", help="Of a private tag's block")
    ] = None,
    wait: Wait = True,
) -> None:
    """Add an extended query tag; the stored instances are reindexed on it (an operation)."""
    entry = {"path": path, "level": level.value, "vr": vr, "privateCreator": private_creator}
    session = connection.open()
    with session.client:
        response = session.client.post(
            f"{session.base}/extendedquerytags",
            json=[{name: value for name, value in entry.items() if value}],
        )
        reference = _answer(response)
        say(f"Operation {reference['id']} reindexes the stored instances.")
        if wait:
            print_json(_watch(session, reference["href"]))


def _watch(session: Session, href: str) -> dict[str, Any]:
    """The operation, polled until it ends, with its progress on a terminal."""
    columns = (TextColumn("Running"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"))
    with Progress(
        *columns, TimeElapsedColumn(), transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task("operation", total=100)
        while True:
            response = session.client.get(href)
            state = _answer(response)
            bar.update(task, completed=state.get("percentComplete", 0))
            if response.status_code == 200:
                return dict(state)
            time.sleep(POLL_SECONDS)


@tags.command("list")
@connected
def list_tags(
    connection: Connection,
) -> None:
    """The extended query tags: a table on a terminal, their JSON when piped."""
    session = connection.open()
    found = _call(session, "GET", "/extendedquerytags", params={"limit": "200"})
    if not console.is_terminal:
        print_json(found)
        return
    table = Table("Path", "VR", "Level", "Status", "Query", "Errors", "Private creator")
    for tag in found:
        errors = str(tag.get("errors", {}).get("count", 0))
        row = (tag["path"], tag["vr"], tag["level"], tag["status"], tag["queryStatus"], errors)
        table.add_row(*row, tag.get("privateCreator", ""))
    console.print(table if found else "No extended query tags.")


@tags.command("show")
@connected
def show(
    connection: Connection,
    path: TagPath,
) -> None:
    """One extended query tag (status, query status, errors, its operation)."""
    session = connection.open()
    print_json(_call(session, "GET", f"/extendedquerytags/{path}"))


@tags.command("errors")
@connected
def errors(
    connection: Connection,
    path: TagPath,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
) -> None:
    """The instances a reindex could not index on the tag, and why."""
    session = connection.open()
    params = {"limit": str(limit), "offset": str(offset)}
    print_json(_call(session, "GET", f"/extendedquerytags/{path}/errors", params=params))


@tags.command("delete")
@connected
def delete(
    connection: Connection,
    path: TagPath,
) -> None:
    """Delete an extended query tag and its values."""
    session = connection.open()
    _call(session, "DELETE", f"/extendedquerytags/{path}")
    say(f"Deleted {escape(path)}.")


@tags.command("enable")
@connected
def enable(
    connection: Connection,
    path: TagPath,
) -> None:
    """Allow QIDO on a tag whose reindex found errors (searches by it then name it in the
    ``erroneous-dicom-attributes`` header)."""
    session = connection.open()
    _query_status(session, path, "Enabled")


@tags.command("disable")
@connected
def disable(
    connection: Connection,
    path: TagPath,
) -> None:
    """Refuse QIDO on a tag (400 until it is enabled again)."""
    session = connection.open()
    _query_status(session, path, "Disabled")


def _query_status(session: Session, path: str, status: str) -> None:
    print_json(_call(session, "PATCH", f"/extendedquerytags/{path}", json={"queryStatus": status}))


@operations.command("show")
@connected
def show_operation(
    connection: Connection,
    operation_id: Annotated[str, typer.Argument(help="The operation's ID")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it ends")] = False,
) -> None:
    """A long-running operation's status and progress."""
    session = connection.open()
    href = f"{session.base}/operations/{operation_id}"
    with session.client:
        print_json(_watch(session, href) if wait else _answer(session.client.get(href)))


@connected
def export(
    connection: Connection,
    identifiers: Annotated[
        list[str] | None,
        typer.Argument(help="STUDY, STUDY/SERIES or STUDY/SERIES/INSTANCE UIDs \\[default: all]"),
    ] = None,
    folder: Annotated[
        str | None, typer.Option("--folder", help="A folder below the server's --export-dir")
    ] = None,
    container_uri: Annotated[
        str | None, typer.Option("--blob-container-uri", help="A blob container URL with a SAS")
    ] = None,
    connection_string: Annotated[
        str | None, typer.Option("--connection-string", help="With --blob-container-name")
    ] = None,
    container_name: Annotated[str | None, typer.Option("--blob-container-name")] = None,
    wait: Wait = True,
) -> None:
    """Export instances (an operation) to Azure Blob Storage or to a folder of the server."""
    if folder is not None:
        destination: dict[str, Any] = {"type": "folder", "settings": {"path": folder}}
    else:
        settings = {
            "blobContainerUri": container_uri,
            "connectionString": connection_string,
            "blobContainerName": container_name,
        }
        chosen = {name: value for name, value in settings.items() if value is not None}
        destination = {"type": "azureblob", "settings": chosen}
    body: dict[str, Any] = {"destination": destination}
    if identifiers:
        body["source"] = {"type": "identifiers", "settings": {"values": identifiers}}
    session = connection.open()
    with session.client:
        reference = _answer(session.client.post(f"{session.base}/export", json=body))
        say(f"Operation {reference['id']} exports the instances.")
        if wait:
            print_json(_watch(session, reference["href"]))


@connected
def update(
    connection: Connection,
    studies: Annotated[list[str], typer.Argument(help="Study instance UIDs (at most 50)")],
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEYWORD=VALUE (several values split by \\\\)"),
    ] = None,
    change_file: Annotated[
        Path | None, typer.Option("--change-dataset", help="A DICOM JSON file of the changes")
    ] = None,
    wait: Wait = True,
) -> None:
    """Update patient and study attributes of every instance of the studies (an operation);
    the original versions are kept."""
    change = json.loads(change_file.read_text()) if change_file is not None else {}
    change.update(_assigned(assignments or []))
    body = {"studyInstanceUids": studies, "changeDataset": change}
    session = connection.open()
    with session.client:
        reference = _answer(session.client.post(f"{session.base}/studies/$bulkUpdate", json=body))
        say(f"Operation {reference['id']} updates the studies.")
        if wait:
            print_json(_watch(session, reference["href"]))


def _assigned(assignments: list[str]) -> dict[str, Any]:
    """``KEYWORD=VALUE`` as DICOM JSON elements (PS3.18 §F.2), a person name as its
    alphabetic group; the server checks them."""
    change: dict[str, Any] = {}
    for assignment in assignments:
        keyword, _, value = assignment.partition("=")
        tag = tag_for_keyword(keyword.strip())
        if tag is None or not value:
            fail(f"Expected KEYWORD=VALUE with a DICOM keyword, not {assignment!r}.")
        vr = dictionary_VR(tag)
        values: list[Any] = value.split("\\")
        if vr == "PN":
            values = [{"Alphabetic": name} for name in values]
        change[f"{tag:08X}"] = {"vr": vr, "Value": values}
    return change
