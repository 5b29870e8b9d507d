"""Where an export writes: a blob store opened from what ``export_request`` kept, the folder
kind only below the operator's export folder (checked again here, after symbolic links are
resolved, since the folder may have changed since the request)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from dicomite.dicom.blobs.azure import AzureBlobStore
from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.blobs.protocol import BlobWriter
from dicomite.dicom.errors import BadRequest
from dicomite.dicom.operations.export_request import FOLDER


class Destination(Protocol):
    def writer(self, key: str, size: int | None = None) -> BlobWriter: ...
    def sync_names(self, keys: Iterable[str]) -> None: ...
    def append(self, key: str, data: bytes) -> None: ...
    def href(self, key: str) -> str: ...
    def close(self) -> None: ...


class OutsideExportFolder(BadRequest):
    """The folder resolves outside ``--export-dir`` (a symbolic link pointing out of it)."""


def folder_below(export_root: Path, path: str) -> Path:
    root = export_root.resolve()
    folder = (root / path).resolve()
    if not folder.is_relative_to(root):
        raise OutsideExportFolder(f"The folder '{path}' is outside the server's export folder.")
    return folder


def open_destination(saved: dict[str, str], export_root: Path) -> Destination:
    if saved["type"] == FOLDER:
        return FileSystemBlobStore(folder_below(export_root, saved["path"]))
    # A SAS for one container may not create it; a connection string may (as the OSS server).
    return AzureBlobStore(saved["url"], create=saved["url"].startswith("azure://"))
