"""One STOW request's body, part by part: the event-loop side of ``dicom.stow``.

Each part goes to a :class:`PartUpload` as it arrives; when it ends, the service commits and
checks it in a worker thread, several parts at once, while the body keeps arriving. Checked
parts are settled in body order into ``pending`` and indexed in batches, exactly as if each part
had been stored before the next one was read. No task is spawned per part: the reading loop
starts each commit and settles the oldest ones once they are done or too many are running.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Future
from typing import TYPE_CHECKING

import anyio

from dicomite.blocking import finished, run_blocking, start_blocking
from dicomite.dicom.errors import PayloadTooLarge, UnsupportedMediaType
from dicomite.dicom.multipart import (
    MediaType,
    MultipartReader,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
)
from dicomite.dicom.stow.results import Result
from dicomite.dicom.stow.upload import PartUpload

if TYPE_CHECKING:
    from dicomite.dicom.stow.service import Part, StowRequest, StowService

DICOM = "application/dicom"
PARALLEL_COMMITS = 8  # parts of one request being committed and checked at the same time
BATCH_SIZE = 64  # instances of one request indexed in one transaction


class RequestBody:
    """One request's parts on their way to the index (in the event loop)."""

    def __init__(self, service: StowService, request: StowRequest) -> None:
        self.service = service
        self.request = request
        self.owner = object()  # this request's claims
        self.pending: list[Part] = []  # checked, waiting to be indexed, in body order
        self.errors: list[Exception] = []  # of committing or indexing parts: later ones stop
        self.body_error: Exception | None = None  # of the body after the parts that ended

    async def single(self, body: AsyncIterator[bytes]) -> Result:
        upload = PartUpload(self.service.blobs, self.service.max_bytes)
        try:
            async for chunk in body:
                await upload.write(chunk)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await upload.abort()
            raise
        # Shielded: a committed (and claimed) instance is always indexed or its blob deleted.
        with anyio.CancelScope(shield=True):
            part = await self._commit(upload)
            if part.new is not None:
                await self._index([part])
        return part.result

    async def _commit(self, upload: PartUpload) -> Part:
        return await finished(self._start_commit(upload))

    def _start_commit(self, upload: PartUpload) -> Future[Part]:
        return start_blocking(self.service.commit_part, self.request, upload, self.owner)

    async def _index(self, batch: list[Part]) -> None:
        await run_blocking(self.service.index_batch, self.request, batch, self.owner)

    async def multipart(self, content_type: MediaType, body: AsyncIterator[bytes]) -> list[Result]:
        part_type = content_type.parameters.get("type")
        if part_type is not None and MediaType.parse(part_type).value != DICOM:
            raise UnsupportedMediaType(f'The multipart type "{part_type[:80]}" is not supported.')
        reader = MultipartReader(boundary_of(content_type))
        results: list[Result] = []
        upload: PartUpload | None = None
        # Parts are committed and checked in worker threads while the body keeps arriving,
        # several at once; they are settled in body order, so that ``pending`` is indexed in
        # batches exactly as if each part had been stored before the next one was read.
        committing: deque[tuple[int, Future[Part]]] = deque()
        try:
            total = 0
            async for chunk in body:
                total += len(chunk)
                if total > self.service.max_bytes:
                    raise PayloadTooLarge(
                        f"The request exceeds the limit of {self.service.max_bytes} bytes."
                    )
                for event in reader.feed(chunk):
                    if isinstance(event, PartStart):
                        _check_part_type(event.headers)
                        upload = PartUpload(self.service.blobs, self.service.max_bytes)
                    elif isinstance(event, PartData) and upload is not None:
                        await upload.write(event.data)
                    elif isinstance(event, PartEnd) and upload is not None:
                        results.append(Result())
                        committing.append((len(results) - 1, self._start_commit(upload)))
                        upload = None
                        while committing and (
                            len(committing) >= PARALLEL_COMMITS or committing[0][1].done()
                        ):
                            await self._settle(*committing.popleft(), results)
            reader.close()
        except Exception as error:  # raised once the parts that ended before it are stored
            self.body_error = error
        finally:
            # Shielded: a part whose blob is committed is always indexed (or its blob deleted).
            with anyio.CancelScope(shield=True):
                if upload is not None:
                    await upload.abort()
                while committing:
                    await self._settle(*committing.popleft(), results)
                await self._flush()
        if self.body_error is not None:
            raise self.body_error
        if self.errors:
            raise self.errors[0]
        return results

    async def _settle(self, slot: int, commit: Future[Part], results: list[Result]) -> None:
        """Take a committed part in body order: into ``pending``, indexed a batch at a time;
        discarded once an earlier part failed to commit or index, as the sequential loop
        would. A failure of the body after the part ended does not undo it."""
        try:
            part = await finished(commit)
        except Exception as error:
            self.errors.append(error)
            return
        results[slot] = part.result
        if self.errors:
            self.service.discard(self.request, part, self.owner)
            return
        if part.new is not None:
            self.pending.append(part)
            if len(self.pending) >= BATCH_SIZE:
                await self._flush()

    async def _flush(self) -> None:
        """Index the parts waiting in ``pending``."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        try:
            await self._index(batch)
        except Exception as error:
            self.errors.append(error)


def _check_part_type(headers: dict[str, str]) -> None:
    given = headers.get("content-type")
    if given is not None and MediaType.parse(given).value != DICOM:
        raise UnsupportedMediaType(f"A part's Content-Type '{given[:80]}' is not {DICOM}.")
