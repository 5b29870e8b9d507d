"""STOW-RS (PS3.18 §10.5): ``POST /studies[/{study}]`` and the v2 upsert ``PUT``.

The body is streamed: each part goes to a blob writer as it arrives; when the part ends the blob
is committed (durable, atomically renamed), its header parsed from the blob, checked, and only
then indexed. A failed check or index commit deletes the new blob; a PUT deletes the blob it
replaced after the index row points at the new one. So an index row never points at a missing
blob, and nothing stored before is touched by a failing request.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import anyio.to_thread
from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dicomite.clock import utcnow
from dicomite.dicom import dicomjson, index, validation
from dicomite.dicom.blobs import BlobStore
from dicomite.dicom.errors import BadRequest, NotAcceptable, PayloadTooLarge, UnsupportedMediaType
from dicomite.dicom.multipart import (
    MediaType,
    MultipartReader,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
)
from dicomite.dicom.stow_results import Reason, Result, response_dataset
from dicomite.dicom.stow_upload import PartUpload
from dicomite.store.db import Store

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
WRITE_ATTEMPTS = 3
PARALLEL_COMMITS = 8  # parts of one request being made durable at the same time
BATCH_SIZE = 64  # instances of one request indexed in one transaction (SQLite)


@dataclass
class StowRequest:
    version: int
    study_uid: str | None
    replace: bool
    base_url: str  # {public_url}/dicom/v{n}


class InFlight:
    """Instances being indexed by this process; a second writer meets 45071."""

    def __init__(self) -> None:
        self._uids: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def claim(self, uids: tuple[str, str, str]) -> bool:
        with self._lock:
            if uids in self._uids:
                return False
            self._uids.add(uids)
            return True

    def release(self, uids: tuple[str, str, str]) -> None:
        with self._lock:
            self._uids.discard(uids)


class StowService:
    def __init__(self, store: Store, blobs: BlobStore, max_request_bytes: int) -> None:
        self._store = store
        self._blobs = blobs
        self._max = max_request_bytes
        self._in_flight = InFlight()
        # Index writes of this process queue here rather than in SQLite's busy handler, which
        # polls with sleeps of up to 100 ms.
        self._write_lock = threading.Lock()
        # Instances indexed per transaction. On SQLite every write transaction holds the one
        # write lock and costs a WAL commit, so a request's instances share one; PostgreSQL
        # keeps one per instance (row locks held across a batch could deadlock writers).
        self._batch_size = BATCH_SIZE if store.is_sqlite else 1

    async def handle(
        self, request: StowRequest, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> tuple[int, dict[str, Any]]:
        if request.study_uid is not None and not validation.valid_uid(request.study_uid):
            raise BadRequest(f"The StudyInstanceUID '{request.study_uid[:80]}' is invalid.")
        check_accept_json(headers.get("accept"))
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self._max:
            raise PayloadTooLarge(f"The request exceeds the limit of {self._max} bytes.")
        content_type = MediaType.parse(headers.get("content-type", ""))
        if content_type.value == DICOM:
            results = [await self._single(request, body)]
        elif content_type.value == "multipart/related":
            results = await self._multipart(request, content_type, body)
        else:
            raise UnsupportedMediaType(
                f"The Content-Type '{content_type.value}' is not supported; use "
                f'multipart/related; type="{DICOM}" or {DICOM}.'
            )
        return response_dataset(request.study_uid, request.base_url, results)

    async def _single(self, request: StowRequest, body: AsyncIterator[bytes]) -> Result:
        upload = PartUpload(self._blobs, self._max)
        try:
            async for chunk in body:
                await upload.write(chunk)
            key, size = await anyio.to_thread.run_sync(upload.commit_sync)
        finally:
            await upload.abort()
        return await anyio.to_thread.run_sync(self._process, request, key, size)

    async def _multipart(
        self, request: StowRequest, content_type: MediaType, body: AsyncIterator[bytes]
    ) -> list[Result]:
        part_type = content_type.parameters.get("type")
        if part_type is not None and MediaType.parse(part_type).value != DICOM:
            raise UnsupportedMediaType(f'The multipart type "{part_type[:80]}" is not supported.')
        reader = MultipartReader(boundary_of(content_type))
        results: list[Result] = []
        upload: PartUpload | None = None
        total = 0
        # Parts are made durable (fsync, rename) in worker threads while the body keeps
        # arriving, several at once; they are checked in body order and indexed in batches
        # (one transaction, a savepoint per instance), exactly as if each part had been stored
        # before the next one was read.
        committing = anyio.Semaphore(PARALLEL_COMMITS)
        previous: anyio.Event | None = None
        errors: list[Exception] = []
        pending: list[tuple[Result, index.NewInstance]] = []
        try:
            async with anyio.create_task_group() as group:
                try:
                    async for chunk in body:
                        total += len(chunk)
                        if total > self._max:
                            raise PayloadTooLarge(
                                f"The request exceeds the limit of {self._max} bytes."
                            )
                        for event in reader.feed(chunk):
                            if isinstance(event, PartStart):
                                _check_part_type(event.headers)
                                upload = PartUpload(self._blobs, self._max)
                            elif isinstance(event, PartData) and upload is not None:
                                await upload.write(event.data)
                            elif isinstance(event, PartEnd) and upload is not None:
                                await committing.acquire()
                                done = anyio.Event()
                                results.append(Result())
                                group.start_soon(
                                    self._store_part, request, upload, committing, previous,
                                    done, results, len(results) - 1, errors, pending,
                                )  # fmt: skip
                                upload, previous = None, done
                    reader.close()
                except Exception as error:  # raised as itself once the started parts are done
                    errors.insert(0, error)
        finally:
            # Shielded: a part whose blob is committed is always indexed (or its blob deleted).
            with anyio.CancelScope(shield=True):
                if upload is not None:
                    await upload.abort()
                await self._flush(request, pending, errors)
        if errors:
            raise errors[0]
        return results

    async def _store_part(
        self, request: StowRequest, upload: PartUpload, committing: anyio.Semaphore,
        previous: anyio.Event | None, done: anyio.Event, results: list[Result], slot: int,
        errors: list[Exception], pending: list[tuple[Result, index.NewInstance]],
    ) -> None:  # fmt: skip
        # Shielded: a part whose blob is committed is always indexed (or its blob deleted).
        with anyio.CancelScope(shield=True):
            try:
                try:
                    key, size = await anyio.to_thread.run_sync(upload.commit_sync)
                finally:
                    committing.release()
                if previous is not None:
                    await previous.wait()
                if errors:  # an earlier part failed: stop as the sequential loop would have
                    self._blobs.delete(key)
                    return
                results[slot] = await anyio.to_thread.run_sync(
                    self._check, request, key, size, pending
                )
                if len(pending) >= self._batch_size:
                    await self._flush(request, pending, errors)
            except Exception as error:
                errors.append(error)
            finally:
                done.set()

    async def _flush(
        self, request: StowRequest, pending: list[tuple[Result, index.NewInstance]],
        errors: list[Exception],
    ) -> None:  # fmt: skip
        """Index the checked parts waiting in ``pending`` (in body order)."""
        if not pending:
            return
        batch = list(pending)
        pending.clear()
        try:
            await anyio.to_thread.run_sync(self._index_batch, request, batch)
        except Exception as error:
            errors.append(error)

    def _check(
        self, request: StowRequest, key: str, size: int,
        pending: list[tuple[Result, index.NewInstance]],
    ) -> Result:  # fmt: skip
        """Read and check one committed blob: a checked instance joins ``pending``, the blob of
        a refused one is deleted."""
        queued = False
        try:
            result, new = self._read(request, key, size)
            if new is not None:
                pending.append((result, new))
                queued = True
            return result
        finally:
            if not queued:
                self._blobs.delete(key)

    def _process(self, request: StowRequest, key: str, size: int) -> Result:
        """Check and index one committed blob; on any failure the blob is deleted."""
        pending: list[tuple[Result, index.NewInstance]] = []
        result = self._check(request, key, size, pending)
        self._index_batch(request, pending)
        return result

    def _read(
        self, request: StowRequest, key: str, size: int
    ) -> tuple[Result, index.NewInstance | None]:
        result = Result()
        try:
            with self._blobs.open(key) as handle:
                dataset = _read_header(handle)
                truncated = _pixel_data_truncated(handle, dataset, size)
        except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError,
                NotImplementedError, AttributeError, IndexError, OverflowError):  # fmt: skip
            result.failure = Reason.PROCESSING_FAILURE
            return result, None
        result.sop_class_uid = _uid(dataset.get("SOPClassUID"))
        result.sop_uid = _uid(dataset.get("SOPInstanceUID"))
        checked = validation.check(dataset)
        if truncated:
            checked.errors.append("The pixel data is truncated.")
        study = _uid(dataset.get("StudyInstanceUID"))
        if checked.errors or (checked.warnings and request.version == 1):
            result.failure = Reason.VALIDATION_FAILURE
            result.comments = checked.errors + checked.warnings
            return result, None
        if request.study_uid is not None and study != request.study_uid:
            result.failure = Reason.MISMATCHED_STUDY
            return result, None
        if checked.warnings:
            result.warning, result.comments = Reason.VALIDATION_WARNING, checked.warnings
        elif _sop_class_mismatch(dataset):
            result.warning = Reason.SOP_CLASS_MISMATCH_WARNING
        meta = dataset.file_meta if hasattr(dataset, "file_meta") else None
        syntax = (
            str(meta.get("TransferSyntaxUID", "1.2.840.10008.1.2")) if meta else "1.2.840.10008.1.2"
        )
        series = _uid(dataset.get("SeriesInstanceUID"))
        assert study and series and result.sop_uid and result.sop_class_uid
        new = index.NewInstance(
            study_uid=study, series_uid=series, sop_uid=result.sop_uid,
            sop_class_uid=result.sop_class_uid, transfer_syntax_uid=syntax,
            number_of_frames=_frames(dataset), blob_key=key, size=size,
            metadata=dicomjson.metadata(dataset), columns=checked.columns,
        )  # fmt: skip
        return result, new

    def _index_batch(
        self, request: StowRequest, batch: list[tuple[Result, index.NewInstance]]
    ) -> None:
        """Index checked instances in one transaction, a savepoint each, so that one refused
        instance leaves the others stored; every blob not indexed in the end is deleted."""
        if not batch:
            return
        stored: list[tuple[Result, index.NewInstance, str | None]] = []
        committed = False
        try:
            with self._write_lock, self._store.write() as session:
                known = index.Known()
                for result, new in batch:
                    outcome = self._index_one(session, known, request, new, result, utcnow())
                    if outcome is not False:
                        stored.append((result, new, outcome))
            committed = True
        finally:
            kept = {new.blob_key for _, new, _ in stored} if committed else set()
            for _, new in batch:
                if new.blob_key not in kept:
                    self._blobs.delete(new.blob_key)
        for result, new, replaced in stored:
            if replaced is not None and replaced != new.blob_key:
                self._blobs.delete(replaced)
            result.retrieve_url = (
                f"{request.base_url}/studies/{new.study_uid}/series/{new.series_uid}"
                f"/instances/{new.sop_uid}"
            )

    def _index_one(
        self, session: Session, known: index.Known, request: StowRequest,
        new: index.NewInstance, result: Result, now: datetime,
    ) -> str | Literal[False] | None:  # fmt: skip
        """One instance in its own savepoint: the replaced blob key (or None), or False when
        refused (``result.failure`` says why). The savepoint is retried when a concurrent
        request (another process on PostgreSQL) created the same study or series first, so
        that the retry finds and extends it."""
        uids = (new.study_uid, new.series_uid, new.sop_uid)
        if not self._in_flight.claim(uids):
            result.failure = Reason.PENDING
            return False
        try:
            for attempt in range(WRITE_ATTEMPTS):
                try:
                    with session.begin_nested():
                        return index.store_instance(
                            session, new, now, replace=request.replace, known=known
                        )
                except index.Duplicate:
                    result.failure = Reason.DUPLICATE
                    return False
                except IntegrityError:
                    known.clear()  # rows added in the savepoint are gone
                    if attempt == WRITE_ATTEMPTS - 1:
                        # still conflicting after the retries: another writer holds it
                        result.failure = Reason.PENDING
                        return False
            raise AssertionError("unreachable")
        finally:
            self._in_flight.release(uids)


def _read_header(handle: Any) -> Any:
    return dcmread(handle, stop_before_pixels=True)


def check_accept_json(accept: str | None) -> None:
    if not accept:
        return
    types = {MediaType.parse(item).value for item in accept.split(",")}
    if not types & {DICOM_JSON, "application/json", "*/*", "application/*"}:
        raise NotAcceptable(
            f"The Accept header '{accept[:100]}' is not supported; use {DICOM_JSON}."
        )


def _check_part_type(headers: dict[str, str]) -> None:
    given = headers.get("content-type")
    if given is not None and MediaType.parse(given).value != DICOM:
        raise UnsupportedMediaType(f"A part's Content-Type '{given[:80]}' is not {DICOM}.")


def _uid(value: Any) -> str | None:
    return str(value).rstrip("\x00 ") if value is not None else None


def _frames(dataset: Any) -> int:
    try:
        return max(1, int(dataset.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def _sop_class_mismatch(dataset: Any) -> bool:
    meta = getattr(dataset, "file_meta", None)
    stored = meta.get("MediaStorageSOPClassUID") if meta is not None else None
    return stored is not None and str(stored) != str(dataset.get("SOPClassUID"))


def _pixel_data_truncated(handle: Any, dataset: Any, size: int) -> bool:
    """After ``stop_before_pixels`` the stream is at the pixel data element, if any: a defined
    length reaching past the end of the blob means the file was cut short."""
    position = handle.tell()
    header = handle.read(12)
    if len(header) < 8 or header[:4] not in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10"):
        return False
    little = header[:4] == b"\xe0\x7f\x10\x00"
    order: Any = "little" if little else "big"
    if header[4:6] in (b"OB", b"OW", b"OF", b"UN"):
        length, start = int.from_bytes(header[8:12], order), position + 12
    elif dataset.is_implicit_VR if hasattr(dataset, "is_implicit_VR") else False:
        length, start = int.from_bytes(header[4:8], order), position + 8
    else:
        return False
    return length != 0xFFFFFFFF and start + length > size
