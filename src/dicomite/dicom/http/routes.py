"""The DICOMweb routes at ``/dicom/v1`` and ``/dicom/v2``: thin adapters from HTTP to the
transactions (stow, wado, qido, delete, changefeed), each guarded by ``dicom.auth``; the data
management routes (extended query tags, operations) are ``management``'s.

The study routes are served twice: at the base URL, and below ``/partitions/{name}`` (Azure's
data partitions); which of the two a deployment answers, and the partition each request is in,
is ``dicom.index.partitions``'s to say, and the transactions get that partition."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from dicomite.blocking import run_blocking
from dicomite.clock import utcnow
from dicomite.dicom.auth import Action
from dicomite.dicom.errors import BadRequest, DicomError, NotFound
from dicomite.dicom.http.management import Management
from dicomite.dicom.http.responses import dicom_json, error_response, routing_error, stow_response
from dicomite.dicom.http.zerocopy import file_response
from dicomite.dicom.index import changefeed, delete, originals, partitions, qido, qido_tags, schema
from dicomite.dicom.index.partitions import Partition
from dicomite.dicom.index.schema import Level
from dicomite.dicom.model.uids import valid_uid
from dicomite.dicom.multipart import new_boundary
from dicomite.dicom.retrieve import rendered, thumbnails, wado
from dicomite.dicom.service import DicomService
from dicomite.dicom.stow.service import (
    DICOM_JSON,
    StowRequest,
    check_accept_json,
)

Handler = Callable[[Request], Awaitable[Response]]
# A study route's handler: the request, in the partition it names (or the whole index).
InPartition = Callable[[Request, Partition], Awaitable[Response]]
logger = logging.getLogger(__name__)


def dicom_app(service: DicomService, version: int) -> Starlette:
    api = _Api(service, version)
    management = Management(service, version, api.base_url)
    routes: list[BaseRoute] = [
        *_study_routes(api, management),
        Route("/partitions", api.guard(Action.SEARCH, api.partitions)),
        Mount("/partitions/{partition}", routes=_study_routes(api, management)),
        Route("/changefeed", api.guard(Action.CHANGEFEED, api.feed)),
        Route("/changefeed/latest", api.guard(Action.CHANGEFEED, api.latest)),
    ]
    routes += management.routes(api.guard)
    return Starlette(routes=routes, exception_handlers={HTTPException: routing_error})


def _study_routes(api: _Api, management: Management) -> list[BaseRoute]:
    """STOW, QIDO, WADO, delete, export and bulk update: the routes of a partition (data
    partitions, "API changes")."""
    s, se, i = "/studies/{study}", "/series/{series}", "/instances/{instance}"
    on = api.in_partition
    routes: list[BaseRoute] = [
        # bulk update before STOW's POST /studies/{study}
        Route("/studies/$bulkUpdate", on(Action.UPDATE, management.update), methods=["POST"]),
        Route("/studies", on(Action.WRITE, api.store, creates=True), methods=["POST"]),
        Route(s, on(Action.WRITE, api.store, creates=True), methods=["POST"]),
        Route("/studies", on(Action.SEARCH, api.search(Level.STUDY)), methods=["GET"]),
        Route("/series", on(Action.SEARCH, api.search(Level.SERIES))),
        Route("/instances", on(Action.SEARCH, api.search(Level.INSTANCE))),
        Route(f"{s}/series", on(Action.SEARCH, api.search(Level.SERIES))),
        Route(f"{s}/instances", on(Action.SEARCH, api.search(Level.INSTANCE))),
        Route(f"{s}{se}/instances", on(Action.SEARCH, api.search(Level.INSTANCE))),
        Route(s, on(Action.READ, api.retrieve), methods=["GET"]),
        Route(f"{s}{se}", on(Action.READ, api.retrieve), methods=["GET"]),
        Route(f"{s}{se}{i}", on(Action.READ, api.retrieve), methods=["GET"]),
        Route(f"{s}/metadata", on(Action.READ, api.metadata)),
        Route(f"{s}{se}/metadata", on(Action.READ, api.metadata)),
        Route(f"{s}{se}{i}/metadata", on(Action.READ, api.metadata)),
        Route(f"{s}{se}{i}/frames/{{frames}}", on(Action.READ, api.frames)),
        Route(f"{s}{se}{i}/rendered", on(Action.READ, api.rendered)),
        Route(f"{s}{se}{i}/frames/{{frames}}/rendered", on(Action.READ, api.rendered)),
        Route(f"{s}{se}{i}/thumbnail", on(Action.READ, api.thumbnail)),
        Route(f"{s}{se}/thumbnail", on(Action.READ, api.thumbnail)),
        Route(s, on(Action.DELETE, api.delete), methods=["DELETE"]),
        Route(f"{s}{se}", on(Action.DELETE, api.delete), methods=["DELETE"]),
        Route(f"{s}{se}{i}", on(Action.DELETE, api.delete), methods=["DELETE"]),
        Route("/export", on(Action.EXPORT, management.export), methods=["POST"]),
    ]
    if api.version >= 2:  # upsert is new in v2 (conformance statement v2, "Store")
        routes.insert(
            0, Route("/studies", on(Action.WRITE, api.upsert, creates=True), methods=["PUT"])
        )
        routes.insert(1, Route(s, on(Action.WRITE, api.upsert, creates=True), methods=["PUT"]))
    return routes


class _Api:
    def __init__(self, service: DicomService, version: int) -> None:
        self.service = service
        self.version = version
        self.base_url = f"{service.public_url}/dicom/v{version}"

    def guard(self, action: Action, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            try:
                authorization = request.headers.get("authorization")
                self.service.auth.authorize(authorization, utcnow(), action)
                _check_uids(request.path_params)
                return await handler(request)
            except DicomError as error:
                return error_response(error)
            except ClientDisconnect:
                return Response(status_code=400)

        return guarded

    def in_partition(
        self, action: Action, handler: InPartition, *, creates: bool = False
    ) -> Handler:
        """``handler`` guarded, in the partition the request names; ``creates``: a STOW, which
        creates a partition it names for the first time (data partitions, "Manage")."""

        async def partitioned(request: Request) -> Response:
            name = request.path_params.get("partition")
            known = self.service.partitions
            if known.known(name):
                partition = known.resolve(name, creates)
            else:
                partition = await run_blocking(known.resolve, name, creates)
            return await handler(request, partition)

        return self.guard(action, partitioned)

    async def partitions(self, request: Request) -> Response:
        """``GET /partitions``: 200 with the list, 204 when there is none."""
        if not self.service.partitions.on:
            raise partitions.PartitionRefused(partitions.DISABLED)
        found = await self.service.store.read_index(self._partitions)
        return JSONResponse(found) if found else Response(status_code=204)

    def _partitions(self) -> list[dict[str, Any]]:
        with self.service.store.transaction() as connection:
            return partitions.listed(connection)

    def _base_url(self, partition: Partition) -> str:
        if not partition.scoped:
            return self.base_url
        return f"{self.base_url}/partitions/{partition.name}"

    async def store(self, request: Request, partition: Partition) -> Response:
        return await self._stow(request, partition, replace=False)

    async def upsert(self, request: Request, partition: Partition) -> Response:
        return await self._stow(request, partition, replace=True)

    async def _stow(self, request: Request, partition: Partition, *, replace: bool) -> Response:
        base_url = self._base_url(partition)
        study = request.path_params.get("study")
        stow_request = StowRequest(self.version, study, replace, base_url, partition)
        headers = {k.lower(): v for k, v in request.headers.items()}
        outcome = await self.service.stow.handle(stow_request, headers, request.stream())
        return stow_response(outcome, base_url)

    def search(self, level: Level) -> InPartition:
        async def handler(request: Request, partition: Partition) -> Response:
            check_accept_json(request.headers.get("accept"))
            params = request.path_params
            scope = qido.Scope(level, params.get("study"), params.get("series"), partition)
            query = qido.parse(list(request.query_params.multi_items()), scope)
            found = await self.service.store.read_index(self._search, scope, query)
            headers = None
            if found.erroneous:
                headers = {qido_tags.ERRONEOUS_HEADER: ",".join(found.erroneous)}
            if not found.results:
                return Response(status_code=204, headers=headers)
            return dicom_json(found.results, headers=headers)

        return handler

    def _search(self, scope: qido.Scope, query: qido.Query) -> qido.Found:
        with self.service.store.transaction() as connection:
            return qido.find(connection, scope, query)

    def _instances(
        self, params: dict[str, Any], partition: Partition, original: bool = False
    ) -> list[schema.StoredInstance]:
        with self.service.store.transaction() as connection:
            found = schema.find_instances(
                connection,
                params["study"],
                params.get("series"),
                params.get("instance"),
                partition=partition,
                original=original,
            )
        if not found:
            raise NotFound(_not_found(params))
        return found

    async def retrieve(self, request: Request, partition: Partition) -> Response:
        single = "instance" in request.path_params
        accept = request.headers.get("accept")
        wanted = wado.negotiate(accept, wado.INSTANCE_TYPES, single_allowed=single)
        original = originals.wants_original(request.headers.get(originals.REQUEST_ORIGINAL))
        params = request.path_params
        instances = await self.service.store.read_index(
            self._instances, params, partition, original
        )
        plan = wado.plan(instances, wanted.syntax)
        blobs, limit = self.service.blobs, self.service.max_inflated_bytes
        boundary = new_boundary()
        syntax = wanted.syntax
        if syntax == "*" and len(instances) == 1:
            syntax = instances[0].transfer_syntax_uid
        media = wado.content_type(replace(wanted, syntax=syntax), boundary)
        path = wado.stored_file(blobs, instances, plan, wanted)
        if path is not None:
            return await file_response(path, media)
        body = wado.instance_body(blobs, instances, plan, wanted, boundary, limit)
        return StreamingResponse(wado.stream(await wado.started(body)), media_type=media)

    async def metadata(self, request: Request, partition: Partition) -> Response:
        check_accept_json(request.headers.get("accept"))
        params = request.path_params
        original = originals.wants_original(request.headers.get(originals.REQUEST_ORIGINAL))
        found = await self.service.store.read_index(self._metadata, params, partition, original)
        if not found:
            raise NotFound(_not_found(params))
        tag = wado.etag([version for version, _ in found])
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"ETag": tag})
        body = "[" + ",".join(text for _, text in found) + "]"
        return Response(body, media_type=DICOM_JSON, headers={"ETag": tag})

    def _metadata(
        self, params: dict[str, Any], partition: Partition, original: bool
    ) -> list[tuple[str, str]]:
        with self.service.store.transaction() as connection:
            return schema.metadata_of(
                connection,
                params["study"],
                params.get("series"),
                params.get("instance"),
                partition=partition,
                original=original,
            )

    async def frames(self, request: Request, partition: Partition) -> Response:
        accept = request.headers.get("accept")
        wanted = wado.negotiate(accept, wado.FRAME_TYPES, single_allowed=True)
        params = request.path_params
        instance = (await self.service.store.read_index(self._instances, params, partition))[0]
        numbers = wado.parse_frames(request.path_params["frames"], instance.number_of_frames)
        wado.plan_frames(instance, wanted)
        boundary = new_boundary()
        body = await wado.started(
            wado.frames_body(
                self.service.blobs,
                instance,
                numbers,
                wanted,
                boundary,
                self.service.max_inflated_bytes,
            )
        )
        media = f'multipart/related; type="{wanted.part_type}"; boundary={boundary}'
        return StreamingResponse(wado.stream(body), media_type=media)

    async def rendered(self, request: Request, partition: Partition) -> Response:
        params = request.path_params
        instance = (await self.service.store.read_index(self._instances, params, partition))[0]
        frame = rendered.frame_number(request.path_params.get("frames"), instance.number_of_frames)
        media = rendered.negotiate(request.headers.get("accept"))
        quality = rendered.quality(request.query_params.get("quality"))
        voi = rendered.window(request.query_params.get("window"))
        blobs, limit = self.service.blobs, self.service.max_inflated_bytes
        image = await run_blocking(
            rendered.render, blobs, instance, frame, media, quality, voi, limit
        )
        return Response(image, media_type=media)

    async def thumbnail(self, request: Request, partition: Partition) -> Response:
        """A Dicomite extension (``dicom.retrieve.thumbnails``), guarded like WADO-RS retrieval."""
        media = rendered.negotiate(request.headers.get("accept"))
        pixels = thumbnails.size(request.query_params.get("size"))
        params = request.path_params
        instance = await self.service.store.read_index(self._thumbnail_source, params, partition)
        tag = thumbnails.etag(instance, media, pixels)
        headers = {"ETag": tag, "Cache-Control": thumbnails.CACHE_CONTROL, "Vary": "Accept"}
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        blobs, limit = self.service.blobs, self.service.max_inflated_bytes
        image = await run_blocking(thumbnails.thumbnail, blobs, instance, media, pixels, limit)
        return Response(image, media_type=media, headers=headers)

    def _thumbnail_source(
        self, params: dict[str, Any], partition: Partition
    ) -> schema.StoredInstance:
        if "instance" in params:
            return self._instances(params, partition)[0]
        with self.service.store.transaction() as connection:
            found = thumbnails.series_representative(
                connection, params["study"], params["series"], partition
            )
        if found is None:
            raise NotFound(_not_found(params))
        return found

    async def delete(self, request: Request, partition: Partition) -> Response:
        params = request.path_params
        await run_blocking(
            delete.delete_resource,
            self.service.store,
            self.service.blobs,
            params["study"],
            params.get("series"),
            params.get("instance"),
            partition,
        )
        return Response(status_code=204)

    async def feed(self, request: Request) -> Response:
        params = {k.lower(): v for k, v in request.query_params.items()}
        return JSONResponse(await self.service.store.read_index(self._feed, params))

    def _feed(self, params: dict[str, str]) -> list[dict[str, Any]]:
        with self.service.store.transaction() as connection:
            return changefeed.read_feed(
                connection, params, self.version, partitioned=self.service.partitions.on
            )

    async def latest(self, request: Request) -> Response:
        params = {k.lower(): v for k, v in request.query_params.items()}
        return JSONResponse(await self.service.store.read_index(self._latest, params))

    def _latest(self, params: dict[str, str]) -> dict[str, Any] | None:
        with self.service.store.transaction() as connection:
            return changefeed.latest(connection, params, partitioned=self.service.partitions.on)


def _check_uids(params: dict[str, Any]) -> None:
    for name in ("study", "series", "instance"):
        value = params.get(name)
        if value is not None and not valid_uid(value):
            raise BadRequest(f"The {name} instance UID '{str(value)[:80]}' is invalid.")


def _not_found(params: dict[str, Any]) -> str:
    if "instance" in params:
        return f"The instance {params['instance']} was not found."
    if "series" in params:
        return f"The series {params['series']} was not found."
    return f"The study {params['study']} was not found."
