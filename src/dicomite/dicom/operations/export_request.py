"""What ``POST /v{n}/export`` accepts (Azure DICOM service, "Export DICOM files"), checked
before anything is stored: a ``source`` of identifiers (optional here: everything) and a
``destination``. Property names match in any case, as the service's JSON reader does.

Destinations:

- ``azureblob``: ``blobContainerUri`` with a SAS token, or, as Microsoft's open-source server
  accepts, ``connectionString`` + ``blobContainerName``. ``useManagedIdentity: true`` is refused:
  Dicomite has no managed identity to sign in with.
- ``folder`` (a Dicomite extension): ``path``, a relative folder below the operator's
  ``--export-dir``; nothing from the request ever names a place outside it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from dicomite.dicom.blobs.azure import BlobUrlError, parse_blob_url
from dicomite.dicom.errors import BadRequest
from dicomite.dicom.model.uids import valid_uid

MAX_IDENTIFIERS = 1_000
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
AZURE_BLOB, FOLDER = "azureblob", "folder"


@dataclass(frozen=True)
class ExportRequest:
    """``sources``: UID paths (study, study/series or study/series/instance); None: all.
    ``destination``: what the operation keeps to reopen the destination (see
    ``export_destinations.open_destination``)."""

    sources: list[list[str]] | None
    destination: dict[str, str]


def parse(body: Any) -> ExportRequest:
    fields = _object(body, "request body")
    _only(fields, {"source", "destination"})
    if "destination" not in fields:
        raise BadRequest("The field 'destination' is required.")
    source = fields.get("source")
    sources = None if source is None else _sources(_object(source, "source"))
    return ExportRequest(sources, _destination(_object(fields["destination"], "destination")))


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"The {what} must be a JSON object.")
    return {str(name).lower(): item for name, item in value.items()}


def _only(fields: Mapping[str, Any], allowed: set[str]) -> None:
    for name in fields:
        if name not in allowed:
            raise BadRequest(f'The field is not supported: "{name[:64]}".')


def _typed(fields: dict[str, Any], what: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    _only(fields, {"type", "settings"})
    kind = fields.get("type")
    if not isinstance(kind, str) or kind.lower() not in allowed:
        raise BadRequest(
            f"The export {what} type '{str(kind)[:64]}' is not supported: expected "
            + " or ".join(f"'{name}'" for name in allowed)
            + "."
        )
    settings = _object(fields.get("settings", {}), f"{what} settings")
    return {"type": kind.lower(), **settings}


def _sources(fields: dict[str, Any]) -> list[list[str]]:
    settings = _typed(fields, "source", ("identifiers",))
    _only(settings, {"type", "values"})
    values = settings.get("values")
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_IDENTIFIERS:
        raise BadRequest(
            f"The source's 'values' must be a list of 1 to {MAX_IDENTIFIERS} identifiers."
        )
    return [_identifier(value) for value in values]


def _identifier(value: Any) -> list[str]:
    """``study``, ``study/series`` or ``study/series/instance``."""
    uids = value.split("/") if isinstance(value, str) else []
    if not 1 <= len(uids) <= 3 or not all(valid_uid(uid) for uid in uids):
        raise BadRequest(
            f"The identifier '{str(value)[:200]}' is invalid: expected a Study Instance UID, "
            "optionally followed by '/' and a Series Instance UID and '/' and an SOP Instance UID."
        )
    return uids


def _destination(fields: dict[str, Any]) -> dict[str, str]:
    settings = _typed(fields, "destination", (AZURE_BLOB, FOLDER))
    if settings["type"] == FOLDER:
        _only(settings, {"type", "path"})
        return {"type": FOLDER, "path": folder_path(settings.get("path"))}
    _only(
        settings,
        {"type", "blobcontaineruri", "connectionstring", "blobcontainername", "usemanagedidentity"},
    )
    if settings.get("usemanagedidentity") not in (None, False):
        raise BadRequest(
            "Managed identities are not available in Dicomite: give 'blobContainerUri' with a "
            "SAS token, or 'connectionString' and 'blobContainerName'."
        )
    return {"type": AZURE_BLOB, "url": _blob_url(settings)}


def folder_path(value: Any) -> str:
    """A relative path of plain names (no ``..``, no root, no drive): it stays below the
    export folder whatever the file system."""
    path = PurePosixPath(value) if isinstance(value, str) else None
    if path is None or path.is_absolute() or not 1 <= len(path.parts) <= 8:
        raise BadRequest(_BAD_FOLDER.format(str(value)[:200]))
    if "\\" in str(value) or not all(_SEGMENT.match(part) for part in path.parts):
        raise BadRequest(_BAD_FOLDER.format(str(value)[:200]))
    return str(path)


_BAD_FOLDER = (
    "The folder '{}' is invalid: give a relative path of up to 8 names (letters, digits, "
    "'.', '_', '-'), below the server's export folder."
)


def _blob_url(settings: dict[str, Any]) -> str:
    """The destination as a ``--blob-url`` (``dicomite.dicom.blobs.azure``) names it."""
    uri, connection = settings.get("blobcontaineruri"), settings.get("connectionstring")
    container = settings.get("blobcontainername")
    if isinstance(uri, str) and connection is None and container is None:
        if not urlsplit(uri).query:
            raise BadRequest(
                "The 'blobContainerUri' needs a SAS token (its query): Dicomite has no managed "
                "identity to sign in to the storage account with."
            )
        url = uri
    elif isinstance(connection, str) and isinstance(container, str) and uri is None:
        url = f"azure://{container}?{connection}"
    else:
        raise BadRequest(
            "The azureblob destination needs either 'blobContainerUri' (with a SAS token) or "
            "'connectionString' and 'blobContainerName'."
        )
    try:
        parse_blob_url(url)
    except BlobUrlError as error:
        raise BadRequest(f"The azureblob destination is invalid: {error}") from None
    return url
