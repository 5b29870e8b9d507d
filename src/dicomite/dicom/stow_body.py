"""One STOW request's body, part by part: the event-loop side of ``dicom.stow``.

Each part goes to a :class:`PartUpload` as it arrives; when it ends, the service commits and
checks it in a worker thread, several parts at once, while the body keeps arriving. Checked
parts join ``pending`` in body order and are indexed in batches, exactly as if each part had
been stored before the next one was read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from dicomite.dicom.errors import PayloadTooLarge, UnsupportedMediaType
from dicomite.dicom.multipart import (
    MediaType,
    MultipartReader,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
)
from dicomite.dicom.stow_results import Result
from dicomite.dicom.stow_upload import PartUpload

if TYPE_CHECKING:
    from dicomite.dicom.stow import Part, StowRequest, StowService

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
        self.errors: list[Exception] = []

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
        return await anyio.to_thread.run_sync(
            self.service.commit_part, self.request, upload, self.owner
        )

    async def _index(self, batch: list[Part]) -> None:
        await anyio.to_thread.run_sync(self.service.index_batch, self.request, batch, self.owner)

    async def multipart(self, content_type: MediaType, body: AsyncIterator[bytes]) -> list[Result]:
        part_type = content_type.parameters.get("type")
        if part_type is not None and MediaType.parse(part_type).value != DICOM:
            raise UnsupportedMediaType(f'The multipart type "{part_type[:80]}" is not supported.')
        reader = MultipartReader(boundary_of(content_type))
        results: list[Result] = []
        upload: PartUpload | None = None
        # Parts are committed and checked in worker threads while the body keeps arriving,
        # several at once; they join ``pending`` in body order and are indexed in batches,
        # exactly as if each part had been stored before the next one was read.
        committing = anyio.Semaphore(PARALLEL_COMMITS)
        previous: anyio.Event | None = None
        try:
            async with anyio.create_task_group() as group:
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
                                await committing.acquire()
                                done = anyio.Event()
                                results.append(Result())
                                group.start_soon(
                                    self._part, upload, committing, previous, done, results,
                                    len(results) - 1,
                                )  # fmt: skip
                                upload, previous = None, done
                    reader.close()
                except Exception as error:  # raised as itself once the started parts are done
                    self.errors.insert(0, error)
        finally:
            # Shielded: a part whose blob is committed is always indexed (or its blob deleted).
            with anyio.CancelScope(shield=True):
                if upload is not None:
                    await upload.abort()
                await self._flush()
        if self.errors:
            raise self.errors[0]
        return results

    async def _part(
        self, upload: PartUpload, committing: anyio.Semaphore, previous: anyio.Event | None,
        done: anyio.Event, results: list[Result], slot: int,
    ) -> None:  # fmt: skip
        # Shielded: a part whose blob is committed is always indexed (or its blob deleted).
        with anyio.CancelScope(shield=True):
            try:
                try:
                    part = await self._commit(upload)
                finally:
                    committing.release()
                results[slot] = part.result
                if previous is not None:
                    await previous.wait()
                if self.errors:  # an earlier part failed: stop as the sequential loop would have
                    self.service.discard(part, self.owner)
                    return
                if part.new is not None:
                    self.pending.append(part)
                    if len(self.pending) >= BATCH_SIZE:
                        await self._flush()
            except Exception as error:
                self.errors.append(error)
            finally:
                done.set()

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
