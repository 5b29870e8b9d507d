"""STOW-RS (PS3.18 §10.5): ``POST /studies[/{study}]`` and the v2 upsert ``PUT``.

The body is streamed: each part goes to a blob writer as it arrives. When a part ends its blob
is committed (durable, atomically renamed) and its header read from the bytes still at hand, in
one worker-thread hop, several parts at once; the checked instances are then indexed in body
order and in batches: the batch's blob names are made durable (one directory sync), then one
transaction indexes it. A failed check or index write deletes the new blob; a PUT deletes the
blob it replaced after the index row points at the new one. So an index row never points at a
missing blob, and nothing stored before is touched by a failing request.

An instance is claimed from the moment its header is checked until its row commits; another
request of this process storing it meanwhile gets 45071 for it.
"""

from __future__ import annotations

import errno
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from pydicom.errors import BytesLengthException, InvalidDicomError
from sqlalchemy.exc import DBAPIError, IntegrityError

from dicomite.clock import utcnow
from dicomite.dicom.blobs.protocol import BlobStore
from dicomite.dicom.errors import (
    BadRequest,
    InsufficientStorage,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from dicomite.dicom.index import tag_index
from dicomite.dicom.index import write as index_write
from dicomite.dicom.index.extended_tags import Indexed, IndexedCache
from dicomite.dicom.index.partitions import DEFAULT_KEY, UNPARTITIONED, Partition
from dicomite.dicom.index.write import NewInstance, Uids
from dicomite.dicom.model.header import Unreadable
from dicomite.dicom.model.uids import valid_uid
from dicomite.dicom.multipart import MediaType
from dicomite.dicom.stow import instance as stow_instance
from dicomite.dicom.stow import validation
from dicomite.dicom.stow.body import DICOM as DICOM  # also what routes and the portal import
from dicomite.dicom.stow.body import RequestBody
from dicomite.dicom.stow.instance import Instance
from dicomite.dicom.stow.results import Outcome, Reason, Result
from dicomite.dicom.stow.upload import PartUpload
from dicomite.settings import Settings
from dicomite.store.db import Store

DICOM_JSON = "application/dicom+json"
WRITE_ATTEMPTS = 3
# RecursionError: should pydicom meet nesting that the depth checks of ``stow_instance`` miss.
UNREADABLE = (
    InvalidDicomError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    OSError,
    NotImplementedError,
    AttributeError,
    IndexError,
    OverflowError,
    BytesLengthException,
    RecursionError,
)
# PostgreSQL's deadlock and serialization failures: the batch is retried (see StowService._index).
_RETRIED_STATES = frozenset({"40P01", "40001"})
MAX_INFLATED_BYTES: int = Settings.model_fields["dicom_max_inflated_bytes"].default


@dataclass
class StowRequest:
    version: int
    study_uid: str | None
    replace: bool
    base_url: str  # {public_url}/dicom/v{n}[/partitions/{name}]
    partition: Partition = UNPARTITIONED
    # The extended query tags its parts are checked against, read when the request starts
    # (StowService.handle: an index read, on SQLite on the event loop), not by each part: parts
    # are checked in several pool threads at once, and their probes queued on the store's one
    # probe connection. A set that changes before a part is indexed is the one it is indexed on
    # (index.write).
    indexed: Indexed | None = field(default=None, compare=False, repr=False)


@dataclass
class Part:
    """One part of a request after its blob was committed and its header checked."""

    result: Result
    new: NewInstance | None = None  # to be indexed; None when refused (its blob is deleted)


# A part indexed: its instance, and the blob key of the instance it replaced (a PUT).
Stored = tuple[Part, NewInstance, str | None]


class InFlight:
    """Instances (of a partition) claimed by requests of this process; another request's claim
    meets 45071."""

    def __init__(self) -> None:
        self._owners: dict[tuple[int, Uids], object] = {}
        self._lock = threading.Lock()

    def claim(self, uids: Uids, owner: object, partition: int = DEFAULT_KEY) -> bool:
        with self._lock:
            return self._owners.setdefault((partition, uids), owner) is owner

    def release(self, uids: Uids, owner: object, partition: int = DEFAULT_KEY) -> None:
        with self._lock:
            if self._owners.get((partition, uids)) is owner:
                del self._owners[(partition, uids)]


class StowService:
    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        max_request_bytes: int,
        max_inflated_bytes: int = MAX_INFLATED_BYTES,
    ) -> None:
        self._store = store
        self.blobs = blobs
        self.max_bytes = max_request_bytes
        self.max_inflated_bytes = max_inflated_bytes  # of one deflated instance
        self.in_flight = InFlight()
        self.tags = IndexedCache(store)  # the extended query tags each instance is indexed on
        # Index writes of this process queue here rather than in SQLite's busy handler, which
        # polls with sleeps of up to 100 ms.
        self.write_lock = threading.Lock()

    async def handle(
        self, request: StowRequest, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> Outcome:
        if request.study_uid is not None and not valid_uid(request.study_uid):
            raise BadRequest(f"The StudyInstanceUID '{request.study_uid[:80]}' is invalid.")
        check_accept_json(headers.get("accept"))
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            raise PayloadTooLarge(f"The request exceeds the limit of {self.max_bytes} bytes.")
        content_type = MediaType.parse(headers.get("content-type", ""))
        request = replace(request, indexed=await self._store.read_index(self.tags.current))
        upload = RequestBody(self, request)
        try:
            if content_type.value == DICOM:
                results = [await upload.single(body)]
            elif content_type.value == "multipart/related":
                results = await upload.multipart(content_type, body)
            else:
                raise UnsupportedMediaType(
                    f"The Content-Type '{content_type.value}' is not supported; use "
                    f'multipart/related; type="{DICOM}" or {DICOM}.'
                )
        except (OSError, DBAPIError) as error:
            if not out_of_space(error):
                raise
            raise InsufficientStorage(
                "The server is out of storage space. Instances of this request that ended before "
                "it ran out may have been stored; a POST of it again answers 45070 for those."
            ) from error
        return Outcome(request.study_uid, results)

    # ------------------------------------------------------- in worker threads

    def commit_part(self, request: StowRequest, upload: PartUpload, owner: object) -> Part:
        """Commit the part's blob (its name made durable later, with its batch's), read and
        check its header, claim the instance; a refused part's blob is deleted."""
        key, size = upload.commit_sync(sync_name=False)
        part: Part | None = None
        try:
            part = self._check(request, upload, key, size)
            new, partition = part.new, request.partition.key
            if new is not None and not self.in_flight.claim(new.uids, owner, partition):
                part.result.failure, part.new = Reason.PENDING, None
            return part
        finally:
            if part is None or part.new is None:
                self.blobs.delete(key)

    def _instance(self, upload: PartUpload, key: str, size: int) -> Instance:
        """The fast reader; pydicom only for what it declines (logged and counted)."""
        return stow_instance.read(
            upload.head,
            upload.complete,
            size,
            lambda: self.blobs.open(key),
            self.max_inflated_bytes,
        )

    @property
    def headers_declined(self) -> int:
        """Instances whose header the fast reader left to pydicom in this process."""
        return stow_instance.DECLINED.count

    def _check(self, request: StowRequest, upload: PartUpload, key: str, size: int) -> Part:
        part = Part(Result())
        result = part.result
        try:
            instance = self._instance(upload, key, size)
        except Unreadable as error:
            result.failure, result.comments = Reason.PROCESSING_FAILURE, [str(error)]
            return part
        except UNREADABLE:
            result.failure, result.comments = Reason.PROCESSING_FAILURE, [_NOT_READABLE]
            return part
        result.sop_class_uid = instance.uid("SOPClassUID")
        result.sop_uid = instance.uid("SOPInstanceUID")
        checked = validation.check(instance.values)
        if request.indexed is None:  # handle reads them before any part is checked
            raise ValueError("a STOW part checked before its request read the query tags")
        tags = tag_index.extract(request.indexed, tag_index.fragments_lookup(instance.fragments))
        checked.warnings += validation.extended_problems(tags.problems)
        if instance.truncated:
            checked.errors.append("The pixel data is truncated.")
        study = instance.uid("StudyInstanceUID")
        if checked.errors or (checked.warnings and request.version == 1):
            result.failure = Reason.VALIDATION_FAILURE
            result.comments = checked.errors + checked.warnings
            return part
        if request.study_uid is not None and study != request.study_uid:
            result.failure = Reason.MISMATCHED_STUDY
            return part
        if checked.warnings:
            result.warning, result.comments = Reason.VALIDATION_WARNING, checked.warnings
        elif instance.sop_class_mismatch:
            result.warning = Reason.SOP_CLASS_MISMATCH_WARNING
        series = instance.uid("SeriesInstanceUID")
        if not (study and series and result.sop_uid and result.sop_class_uid):
            # validation.check refuses an instance without them (REQUIRED)
            raise ValueError("a checked instance lacks a required UID")
        part.new = NewInstance(
            study_uid=study,
            series_uid=series,
            sop_uid=result.sop_uid,
            sop_class_uid=result.sop_class_uid,
            transfer_syntax_uid=instance.transfer_syntax_uid,
            number_of_frames=instance.number_of_frames,
            blob_key=key,
            size=size,
            metadata=instance.fragments,
            columns=checked.columns,
            tags=tags,
        )
        return part

    def discard(self, request: StowRequest, part: Part, owner: object) -> None:
        if part.new is not None:
            self.in_flight.release(part.new.uids, owner, request.partition.key)
            self.blobs.delete(part.new.blob_key)

    def index_batch(self, request: StowRequest, batch: list[Part], owner: object) -> None:
        """Make the batch's blob names durable, then index it; release its claims. Every blob
        not indexed in the end is deleted, and so is every blob an indexed one replaced."""
        stored: list[Stored] = []  # once committed
        try:
            self.blobs.sync_names([part.new.blob_key for part in batch if part.new])
            self._index(request, batch, stored)
        finally:
            kept = {id(part) for part, _, _ in stored}
            for part in batch:
                if part.new is not None:
                    self.in_flight.release(part.new.uids, owner, request.partition.key)
                    if id(part) not in kept:
                        self.blobs.delete(part.new.blob_key)
        for part, new, replaced in stored:
            if replaced is not None and replaced != new.blob_key:
                self.blobs.delete(replaced)
            part.result.retrieve_url = (
                f"{request.base_url}/studies/{new.study_uid}/series/{new.series_uid}"
                f"/instances/{new.sop_uid}"
            )

    def _index(self, request: StowRequest, batch: list[Part], stored: list[Stored]) -> None:
        """One transaction for the batch (``index_write.store``), retried when it met another
        writer (another process on PostgreSQL: a study or series created, or a deadlock), so
        that the retry finds and extends what the other one wrote. Parts indexed join
        ``stored`` once the transaction committed."""
        indexed = [(part, part.new) for part in batch if part.new is not None]
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.write_lock, self._store.transaction(write=True) as db:
                    outcomes = index_write.store(
                        db,
                        [new for _, new in indexed],
                        utcnow(),
                        replace=request.replace,
                        partition=request.partition,
                    )
                break
            except DBAPIError as error:
                if not isinstance(error, IntegrityError) and _state(error) not in _RETRIED_STATES:
                    raise
                if attempt == WRITE_ATTEMPTS - 1:  # still conflicting: another writer holds it
                    for part, _ in indexed:
                        part.result.failure = Reason.PENDING
                    return
        for (part, new), outcome in zip(indexed, outcomes, strict=True):
            if outcome is None:
                part.result.failure = Reason.DUPLICATE
            else:
                stored.append((part, new, outcome.replaced))


def out_of_space(error: BaseException) -> bool:
    """A full file system or quota, or a database that cannot grow (SQLITE_FULL; PostgreSQL's
    disk_full, 53100)."""
    if isinstance(error, OSError):
        return error.errno in _NO_SPACE
    if isinstance(error, DBAPIError):
        cause = error.orig
        return _state(error) == "53100" or getattr(cause, "sqlite_errorcode", None) == _SQLITE_FULL
    return False


_NOT_READABLE = "The part cannot be read as a DICOM file (PS3.10)."
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = sqlite3.SQLITE_FULL


def _state(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def check_accept_json(accept: str | None) -> None:
    if not accept:
        return
    types = {MediaType.parse(item).value for item in accept.split(",")}
    if not types & {DICOM_JSON, "application/json", "*/*", "application/*"}:
        raise NotAcceptable(
            f"The Accept header '{accept[:100]}' is not supported; use {DICOM_JSON}."
        )
