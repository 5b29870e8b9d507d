"""Blobs in Azure Blob Storage (or Azurite): ``AzureBlobStore``, chosen with ``--blob-url``.

``--blob-url`` takes one of three forms; the container is created when missing:

- ``azure://<container>?<connection string>`` — any Azure Storage connection string, e.g. for
  Azurite ``azure://dicom?DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;
  AccountKey=...;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;`` (one line);
- ``https://<account>.blob.core.windows.net/<container>[?<SAS token>]`` — an account endpoint
  plus the container; with no SAS the process authenticates with ``DefaultAzureCredential``
  (managed identity, workload identity, ``az login``), which needs ``azure-identity`` installed;
- ``http://127.0.0.1:10000/<account>/<container>[?<SAS token>]`` — a path-style (emulator)
  endpoint: two path segments mean ``<account>/<container>``. For the account
  ``devstoreaccount1`` and no SAS, Azurite's published well-known key is used.

How the storage rules of ``dicomite.dicom.blobs`` hold here:
- a writer stages its bytes as uncommitted blocks (4 MiB each, ids unique to the writer) and
  ``commit`` makes the blob visible atomically with Put Block List, which returns only once the
  blob is durable; uncommitted blocks are never listed nor readable, so nothing is visible
  half-written;
- an aborted or crashed writer leaves only uncommitted blocks, which the service discards after
  a week by itself, so ``sweep_temporary`` has nothing to do;
- ``open`` reads ranges on demand, pinned to the ETag seen at open, so memory stays flat.
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings

from dicomite.dicom.blobs.protocol import AbortOnExit, BlobWriter, WriterFinished, check_key

BLOCK_SIZE = 4 * 1024 * 1024
READ_AHEAD = 4 * 1024 * 1024
KEY_PREFIX = "instances/"
EMULATOR_ACCOUNT = "devstoreaccount1"
# Published by Microsoft for Azurite and the storage emulator; not a secret.
EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_CONTAINER_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_CONTENT = ContentSettings(content_type="application/dicom")


class BlobUrlError(ValueError):
    """``--blob-url`` cannot be understood; the message says which form was expected."""


@dataclass(frozen=True)
class AzureLocation:
    """Where the container is and how to authenticate, parsed from ``--blob-url``."""

    container: str
    connection_string: str | None = None
    account_url: str | None = None
    credential: Any = None

    def container_client(self) -> ContainerClient:
        if self.connection_string is not None:
            return ContainerClient.from_connection_string(self.connection_string, self.container)
        return ContainerClient(self.account_url or "", self.container, credential=self.credential)


def parse_blob_url(url: str) -> AzureLocation:
    """The ``AzureLocation`` named by a ``--blob-url`` (forms in the module docstring)."""
    parts = urlsplit(url)
    if parts.scheme == "azure":
        location = _from_connection_string(parts.netloc, url.partition("?")[2])
    elif parts.scheme in ("http", "https") and parts.netloc:
        location = _from_endpoint(url)
    else:
        raise BlobUrlError(
            f"unsupported blob URL {_redacted(url)!r}: expected azure://<container>?<connection "
            "string>, https://<account>.blob.core.windows.net/<container>[?<SAS>] or "
            "http://<host>:<port>/<account>/<container>[?<SAS>]"
        )
    if not _CONTAINER_NAME.match(location.container):
        raise BlobUrlError(
            f"invalid container name {location.container!r} in blob URL: 3-63 lowercase "
            "letters, digits and single hyphens, starting and ending with a letter or digit"
        )
    return location


def _from_connection_string(container: str, connection_string: str) -> AzureLocation:
    fields = dict(item.partition("=")[::2] for item in connection_string.split(";") if item)
    if not connection_string or not ({"AccountName", "BlobEndpoint"} & fields.keys()):
        raise BlobUrlError(
            "azure:// blob URL needs a connection string after '?', e.g. azure://<container>?"
            "DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;"
        )
    return AzureLocation(container=container, connection_string=connection_string)


def _from_endpoint(url: str) -> AzureLocation:
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    origin = f"{parts.scheme}://{parts.netloc}"
    if len(segments) == 1:
        account, container, account_url = None, segments[0], origin
    elif len(segments) == 2:
        account, container = segments
        account_url = f"{origin}/{account}"
    else:
        raise BlobUrlError(
            f"blob URL {_redacted(url)!r} must name a container: https://<account>.blob.core."
            "windows.net/<container> or, path-style, http://<host>:<port>/<account>/<container>"
        )
    credential = parts.query or _default_credential(account)
    return AzureLocation(container=container, account_url=account_url, credential=credential)


def _default_credential(account: str | None) -> Any:
    if account == EMULATOR_ACCOUNT:
        return {"account_name": EMULATOR_ACCOUNT, "account_key": EMULATOR_KEY}
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise BlobUrlError(
            "blob URL has no SAS token; append one (?sv=...&sig=...) or install azure-identity "
            "to authenticate with DefaultAzureCredential"
        ) from None
    return DefaultAzureCredential()


def _redacted(url: str) -> str:
    """Keys and SAS signatures stay out of error messages and logs."""
    return url.partition("?")[0]


class _BlockWriter(AbortOnExit):
    """Stages 4 MiB blocks as bytes arrive; Put Block List at commit makes the blob visible."""

    def __init__(self, blob: BlobClient) -> None:
        self._blob = blob
        self._nonce = secrets.token_hex(8)  # another writer's blocks never mix with ours
        self._blocks: list[BlobBlock] = []
        self._pending = bytearray()
        self._size = 0
        self._open = True

    def _check_open(self) -> None:
        if not self._open:
            raise WriterFinished(f"the writer of {self._blob.blob_name} has finished")

    def write(self, data: bytes | memoryview) -> None:
        self._check_open()
        self._pending += data
        self._size += len(data)
        while len(self._pending) >= BLOCK_SIZE:
            self._stage(memoryview(self._pending)[:BLOCK_SIZE])
            del self._pending[:BLOCK_SIZE]

    def write_all(self, chunks: Sequence[bytes | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _stage(self, block: memoryview) -> None:
        raw_id = f"{self._nonce}-{len(self._blocks):08d}".encode()
        block_id = base64.b64encode(raw_id).decode()  # all ids of a blob have the same length
        with block:
            self._blob.stage_block(block_id, bytes(block), length=len(block))
        self._blocks.append(BlobBlock(block_id=block_id))

    def commit(self, *, sync_name: bool = True) -> int:
        """Put Block List returns once the blob is durable, name and all (``sync_name`` is for
        stores where that takes a separate step)."""
        self._check_open()
        if self._pending:
            self._stage(memoryview(self._pending))
            self._pending.clear()
        self._blob.commit_block_list(self._blocks, content_settings=_CONTENT)
        self._open = False
        return self._size

    def abort(self) -> None:
        # Staged blocks stay uncommitted: invisible, and garbage-collected by the service.
        self._open = False
        self._pending.clear()


class _RangedReader(io.RawIOBase):
    """A seekable view of one blob version, fetched in ``READ_AHEAD`` ranges on demand."""

    def __init__(self, blob: BlobClient, size: int, etag: str) -> None:
        # Readers of files (pydicom among them) expect a buffered stream to have a name.
        self.name = blob.blob_name
        self._blob = blob
        self._size = size
        self._etag = etag
        self._position = 0
        self._window = b""
        self._window_start = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        if self._position >= self._size or not len(target):
            return 0
        offset = self._position - self._window_start
        if not 0 <= offset < len(self._window):
            self._window = self._fetch(self._position)
            self._window_start, offset = self._position, 0
        count = min(len(target), len(self._window) - offset)
        target[:count] = self._window[offset : offset + count]
        self._position += count
        return count

    def _fetch(self, start: int) -> bytes:
        length = min(READ_AHEAD, self._size - start)
        stream = self._blob.download_blob(
            offset=start,
            length=length,
            etag=self._etag,
            match_condition=MatchConditions.IfNotModified,
        )
        return stream.readall()


class AzureBlobStore:
    """Blobs in one Azure Storage container; see the module docstring for ``url``."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """``create``: make the container when missing (a SAS for one container may not)."""
        self._container = parse_blob_url(url).container_client()
        if create:
            self._ensure_container()

    def _ensure_container(self) -> None:
        if self._container.exists():
            return
        with contextlib.suppress(ResourceExistsError):  # another process created it first
            self._container.create_container()

    def _blob(self, key: str) -> BlobClient:
        return self._container.get_blob_client(check_key(key))

    def writer(self, key: str, size: int | None = None) -> BlobWriter:
        return _BlockWriter(self._blob(key))

    def sync_names(self, keys: Iterable[str]) -> None:
        """Nothing to do: a committed blob is durable (``_BlockWriter.commit``)."""

    def local_path(self, key: str) -> None:
        """None: blobs are in the storage service, not in local files."""
        return None

    def open(self, key: str) -> BinaryIO:
        blob = self._blob(key)
        try:
            properties = blob.get_blob_properties()
        except ResourceNotFoundError:
            raise FileNotFoundError(f"no blob {key!r}") from None
        reader = _RangedReader(blob, properties.size, properties.etag)
        return io.BufferedReader(reader, buffer_size=64 * 1024)

    def append(self, key: str, data: bytes) -> None:
        """Add ``data`` at the end of the append blob ``key`` (created when missing): a log."""
        blob = self._blob(key)
        if not blob.exists():
            blob.create_append_blob()
        blob.append_block(data)

    def href(self, key: str) -> str:
        """The blob's URL, without the SAS token the store may have been given."""
        url = self._blob(key).url
        return url.partition("?")[0]

    def size(self, key: str) -> int | None:
        try:
            return int(self._blob(key).get_blob_properties().size)
        except ResourceNotFoundError:
            return None

    def delete(self, key: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._blob(key).delete_blob()

    def keys(self) -> Iterator[str]:
        yield from self._container.list_blob_names(name_starts_with=KEY_PREFIX)

    def sweep_temporary(self, older_than_seconds: float) -> int:
        """Nothing to sweep: uncommitted blocks expire in the service (module docstring)."""
        return 0

    def close(self) -> None:
        self._container.close()
