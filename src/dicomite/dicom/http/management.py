"""The data-management routes of ``/dicom/v{n}`` (Azure DICOM service, "Extended query tags"
overview): ``extendedquerytags`` (add, list, get, delete, update, errors) and
``operations/{id}``, ``export`` (Azure DICOM service, "Export DICOM files") and
``studies/$bulkUpdate`` ("Update DICOM files"). Reading needs ``Dicom.Read``; changing tags,
exporting and updating need ``Dicom.ReadWrite`` (Azure's data actions ``read``,
``manageExtendedQueryTags`` and ``export``; updating is the DICOM Data Owner's). Bodies are
JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dicomite.blocking import run_blocking
from dicomite.dicom.auth import Action
from dicomite.dicom.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from dicomite.dicom.http.responses import plain_json
from dicomite.dicom.index import extended_tags, tag_entries, tag_errors
from dicomite.dicom.index.extended_tags import DISABLED, ENABLED, QueryTag
from dicomite.dicom.index.partitions import Partition
from dicomite.dicom.multipart import MediaType
from dicomite.dicom.operations import (
    bulk_update,
    bulk_update_request,
    export,
    export_request,
    records,
    reindex,
)
from dicomite.dicom.service import DicomService

Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Action, Handler], Handler]
MAX_BODY_BYTES = 64 * 1024  # 128 entries of a few fields fit many times over
MAX_LIMIT, DEFAULT_LIMIT = 200, 100
MAX_OFFSET = 2**31  # as QIDO's: beyond any page, and within every database's integer range
_QUERY_STATUSES = {ENABLED: ENABLED, DISABLED: DISABLED}


class Management:
    def __init__(self, service: DicomService, version: int, base_url: str) -> None:
        self.service = service
        self.version = version
        self.base_url = base_url

    def routes(self, guard: Guard) -> list[Route]:
        tags, tag = "/extendedquerytags", "/extendedquerytags/{path}"
        return [
            Route(tags, guard(Action.MANAGE_TAGS, self.add), methods=["POST"]),
            Route(tags, guard(Action.READ, self.list_tags), methods=["GET"]),
            Route(tag, guard(Action.READ, self.get_tag), methods=["GET"]),
            Route(tag, guard(Action.MANAGE_TAGS, self.delete_tag), methods=["DELETE"]),
            Route(tag, guard(Action.MANAGE_TAGS, self.update_tag), methods=["PATCH"]),
            Route(f"{tag}/errors", guard(Action.READ, self.errors), methods=["GET"]),
            Route("/operations/{id}", guard(Action.READ, self.operation), methods=["GET"]),
        ]

    async def add(self, request: Request) -> Response:
        entries = tag_entries.entries(await _json_body(request))
        store = self.service.store
        operation_id = await run_blocking(reindex.start, store, entries, self.base_url)
        return self._started(operation_id)

    async def export(self, request: Request, partition: Partition) -> Response:
        """``POST /export``: a partition's route (data partitions, "API changes")."""
        wanted = export_request.parse(await _json_body(request))
        root, store = self.service.export_root, self.service.store
        operation_id = await run_blocking(export.start, store, wanted, root, partition)
        return self._started(operation_id)

    async def update(self, request: Request, partition: Partition) -> Response:
        """``POST /studies/$bulkUpdate``: a partition's route, as export."""
        wanted = bulk_update_request.parse(await _json_body(request))
        store, base_url = self.service.store, self.base_url
        operation_id = await run_blocking(bulk_update.start, store, wanted, base_url, partition)
        return self._started(operation_id)

    def _started(self, operation_id: str) -> Response:
        self.service.operations.wake()
        href = f"{self.base_url}/operations/{operation_id}"
        return plain_json({"id": operation_id, "href": href}, 202, {"Location": href})

    async def list_tags(self, request: Request) -> Response:
        limit, offset = _paging(request.query_params)
        found = await self.service.store.read_index(self._tags, limit, offset)
        return plain_json([tag.as_json(self.base_url) for tag in found])

    def _tags(self, limit: int, offset: int) -> list[QueryTag]:
        with self.service.store.transaction() as db:
            return extended_tags.list_tags(db, limit, offset)

    async def get_tag(self, request: Request) -> Response:
        path = tag_entries.normal_path(request.path_params["path"])
        found = await self.service.store.read_index(self._tag, path)
        return plain_json(found.as_json(self.base_url))

    def _tag(self, path: str) -> QueryTag:
        with self.service.store.transaction() as db:
            return extended_tags.get_tag(db, path)

    async def delete_tag(self, request: Request) -> Response:
        path = tag_entries.normal_path(request.path_params["path"])
        await run_blocking(extended_tags.delete_tag, self.service.store, path)
        return Response(status_code=204)

    async def update_tag(self, request: Request) -> Response:
        path = tag_entries.normal_path(request.path_params["path"])
        status = _query_status(await _json_body(request))
        found = await run_blocking(self._set_query_status, path, status)
        return plain_json(found.as_json(self.base_url))

    def _set_query_status(self, path: str, status: str) -> QueryTag:
        with self.service.store.transaction(write=True) as db:
            return extended_tags.set_query_status(db, path, status)

    async def errors(self, request: Request) -> Response:
        path = tag_entries.normal_path(request.path_params["path"])
        limit, offset = _paging(request.query_params)
        found = await self.service.store.read_index(self._errors, path, limit, offset)
        return plain_json(found)

    def _errors(self, path: str, limit: int, offset: int) -> list[dict[str, Any]]:
        with self.service.store.transaction() as db:
            key = extended_tags.get_tag(db, path).key
            return tag_errors.errors_of(db, key, limit, offset)

    async def operation(self, request: Request) -> Response:
        """200 once finished; 202 with its ``Location`` while it runs."""
        given = request.path_params["id"]
        operation_id = records.parse_id(given)
        found = None
        if operation_id is not None:
            found = await self.service.store.read_index(self._operation, operation_id)
        if found is None:
            raise NotFound(f"The operation '{given[:64]}' was not found.")
        body = found.as_json(self.base_url, self.version)
        if not found.running:
            return plain_json(body)
        return plain_json(body, 202, {"Location": f"{self.base_url}/operations/{found.id}"})

    def _operation(self, operation_id: str) -> records.Operation | None:
        with self.service.store.transaction() as db:
            return records.get(db, operation_id)


async def _json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if MediaType.parse(content_type).value != "application/json":
        raise UnsupportedMediaType(
            f"The specified content type '{content_type[:100]}' is not supported."
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"The request exceeded the allowed limit of {MAX_BODY_BYTES} bytes."
            )
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # deep nesting fits in the limit: ``[`` is one byte
        raise BadRequest("The syntax of the request body is invalid.") from None


def _query_status(body: Any) -> str:
    """``{"queryStatus": "Enabled" | "Disabled"}``, names and values in any case."""
    if not isinstance(body, dict):
        raise BadRequest("The syntax of the request body is invalid.")
    for name in body:
        if str(name).lower() != "querystatus":
            raise BadRequest(f'The field is not supported: "{str(name)[:64]}".')
    value = next(iter(body.values()), None)
    status = _QUERY_STATUSES.get(value.lower()) if isinstance(value, str) else None
    if status is None:
        raise BadRequest(
            "The field 'queryStatus' in request body is invalid: The value is not valid. It "
            'need to be one of "Disabled, Enabled".'
        )
    return status


def _paging(query: Mapping[str, str]) -> tuple[int, int]:
    """``limit`` (1-200, default 100) and ``offset``, as Azure's pagination options."""
    limit = _integer(query, "limit", DEFAULT_LIMIT)
    offset = _integer(query, "offset", 0)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(
            f"Specified limit value {limit} is outside the allowed range of 1..{MAX_LIMIT}."
        )
    if offset < 0:
        raise BadRequest(f"Specified offset value {offset} cannot be negative.")
    if offset > MAX_OFFSET:
        raise BadRequest(f"Specified offset value {offset} is over the maximum of {MAX_OFFSET}.")
    return limit, offset


def _integer(query: Mapping[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"The value '{value[:32]}' of '{name}' is not an integer.") from None
