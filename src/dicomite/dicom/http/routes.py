"""The DICOMweb routes at ``/dicom/v1`` and ``/dicom/v2``: thin adapters from HTTP to the
transactions (stow, wado, qido, delete, changefeed), each guarded by ``dicom.auth``; the data
management routes (extended query tags, operations) are ``management``'s."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dicomite.blocking import run_blocking
from dicomite.clock import utcnow
from dicomite.dicom.auth import Action
from dicomite.dicom.errors import BadRequest, DicomError, NotFound
from dicomite.dicom.http.management import Management
from dicomite.dicom.http.responses import dicom_json, error_response, routing_error, stow_response
from dicomite.dicom.http.zerocopy import files_response
from dicomite.dicom.index import changefeed, delete, originals, qido, qido_tags, schema
from dicomite.dicom.index.schema import Level
from dicomite.dicom.model.uids import valid_uid
from dicomite.dicom.multipart import new_boundary
from dicomite.dicom.retrieve import rendered, thumbnails, transcode, wado
from dicomite.dicom.service import DicomService
from dicomite.dicom.stow.service import (
    DICOM_JSON,
    StowRequest,
    check_accept_json,
)

Handler = Callable[[Request], Awaitable[Response]]
logger = logging.getLogger(__name__)


def dicom_app(service: DicomService, version: int) -> Starlette:
    api = _Api(service, version)
    s, se, i = "/studies/{study}", "/series/{series}", "/instances/{instance}"
    routes = [
        Route("/studies", api.guard(Action.WRITE, api.store), methods=["POST"]),
        Route(s, api.guard(Action.WRITE, api.store), methods=["POST"]),
        Route("/studies", api.guard(Action.SEARCH, api.search(Level.STUDY)), methods=["GET"]),
        Route("/series", api.guard(Action.SEARCH, api.search(Level.SERIES))),
        Route("/instances", api.guard(Action.SEARCH, api.search(Level.INSTANCE))),
        Route(f"{s}/series", api.guard(Action.SEARCH, api.search(Level.SERIES))),
        Route(f"{s}/instances", api.guard(Action.SEARCH, api.search(Level.INSTANCE))),
        Route(f"{s}{se}/instances", api.guard(Action.SEARCH, api.search(Level.INSTANCE))),
        Route(s, api.guard(Action.READ, api.retrieve), methods=["GET"]),
        Route(f"{s}{se}", api.guard(Action.READ, api.retrieve), methods=["GET"]),
        Route(f"{s}{se}{i}", api.guard(Action.READ, api.retrieve), methods=["GET"]),
        Route(f"{s}/metadata", api.guard(Action.READ, api.metadata)),
        Route(f"{s}{se}/metadata", api.guard(Action.READ, api.metadata)),
        Route(f"{s}{se}{i}/metadata", api.guard(Action.READ, api.metadata)),
        Route(f"{s}{se}{i}/frames/{{frames}}", api.guard(Action.READ, api.frames)),
        Route(f"{s}{se}{i}/rendered", api.guard(Action.READ, api.rendered)),
        Route(f"{s}{se}{i}/frames/{{frames}}/rendered", api.guard(Action.READ, api.rendered)),
        Route(f"{s}{se}{i}/thumbnail", api.guard(Action.READ, api.thumbnail)),
        Route(f"{s}{se}/thumbnail", api.guard(Action.READ, api.thumbnail)),
        Route(s, api.guard(Action.DELETE, api.delete), methods=["DELETE"]),
        Route(f"{s}{se}", api.guard(Action.DELETE, api.delete), methods=["DELETE"]),
        Route(f"{s}{se}{i}", api.guard(Action.DELETE, api.delete), methods=["DELETE"]),
        Route("/changefeed", api.guard(Action.CHANGEFEED, api.feed)),
        Route("/changefeed/latest", api.guard(Action.CHANGEFEED, api.latest)),
    ]
    # first: POST /studies/$bulkUpdate before STOW's POST /studies/{study}
    routes[:0] = Management(service, version, api.base_url).routes(api.guard)
    if version >= 2:  # upsert is new in v2 (conformance statement v2, "Store")
        routes.insert(0, Route("/studies", api.guard(Action.WRITE, api.upsert), methods=["PUT"]))
        routes.insert(1, Route(s, api.guard(Action.WRITE, api.upsert), methods=["PUT"]))
    return Starlette(routes=routes, exception_handlers={HTTPException: routing_error})


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

    async def store(self, request: Request) -> Response:
        return await self._stow(request, replace=False)

    async def upsert(self, request: Request) -> Response:
        return await self._stow(request, replace=True)

    async def _stow(self, request: Request, *, replace: bool) -> Response:
        stow_request = StowRequest(
            self.version, request.path_params.get("study"), replace, self.base_url
        )
        headers = {k.lower(): v for k, v in request.headers.items()}
        outcome = await self.service.stow.handle(stow_request, headers, request.stream())
        return stow_response(outcome, self.base_url)

    def search(self, level: Level) -> Handler:
        async def handler(request: Request) -> Response:
            check_accept_json(request.headers.get("accept"))
            params = request.path_params
            scope = qido.Scope(level, params.get("study"), params.get("series"))
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
        self, params: dict[str, Any], original: bool = False
    ) -> list[schema.StoredInstance]:
        with self.service.store.transaction() as connection:
            found = schema.find_instances(
                connection,
                params["study"],
                params.get("series"),
                params.get("instance"),
                original=original,
            )
        if not found:
            raise NotFound(_not_found(params))
        return found

    async def retrieve(self, request: Request) -> Response:
        single = "instance" in request.path_params
        accept = request.headers.get("accept")
        wanted = wado.negotiate(accept, wado.INSTANCE_TYPES, single_allowed=single)
        original = originals.wants_original(request.headers.get(originals.REQUEST_ORIGINAL))
        instances = await self.service.store.read_index(
            self._instances, request.path_params, original
        )
        plan = wado.plan(instances, wanted.syntax)
        blobs, limit = self.service.blobs, self.service.max_inflated_bytes
        ready = None
        if len(instances) == 1 and not plan[0]:
            body = transcode.transcoded(blobs, instances[0], wanted.syntax, limit)
            ready = await wado.started(body)
        boundary = new_boundary()

        def stream() -> AsyncIterator[bytes]:
            return wado.instance_stream(blobs, instances, plan, wanted, boundary, limit, ready)

        syntax = wanted.syntax
        if syntax == "*" and len(instances) == 1:
            syntax = instances[0].transfer_syntax_uid
        media = wado.content_type(replace(wanted, syntax=syntax), boundary)
        files = wado.stored_files(blobs, instances, plan, wanted, boundary)
        if files is not None:
            return files_response(files, media, stream)
        return StreamingResponse(stream(), media_type=media)

    async def metadata(self, request: Request) -> Response:
        check_accept_json(request.headers.get("accept"))
        params = request.path_params
        original = originals.wants_original(request.headers.get(originals.REQUEST_ORIGINAL))
        found = await self.service.store.read_index(self._metadata, params, original)
        if not found:
            raise NotFound(_not_found(params))
        tag = wado.etag([version for version, _ in found])
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"ETag": tag})
        body = "[" + ",".join(text for _, text in found) + "]"
        return Response(body, media_type=DICOM_JSON, headers={"ETag": tag})

    def _metadata(self, params: dict[str, Any], original: bool) -> list[tuple[str, str]]:
        with self.service.store.transaction() as connection:
            return schema.metadata_of(
                connection,
                params["study"],
                params.get("series"),
                params.get("instance"),
                original=original,
            )

    async def frames(self, request: Request) -> Response:
        accept = request.headers.get("accept")
        wanted = wado.negotiate(accept, wado.FRAME_TYPES, single_allowed=True)
        instance = (await self.service.store.read_index(self._instances, request.path_params))[0]
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

    async def rendered(self, request: Request) -> Response:
        instance = (await self.service.store.read_index(self._instances, request.path_params))[0]
        frame = rendered.frame_number(request.path_params.get("frames"), instance.number_of_frames)
        media = rendered.negotiate(request.headers.get("accept"))
        quality = rendered.quality(request.query_params.get("quality"))
        voi = rendered.window(request.query_params.get("window"))
        blobs, limit = self.service.blobs, self.service.max_inflated_bytes
        image = await run_blocking(
            rendered.render, blobs, instance, frame, media, quality, voi, limit
        )
        return Response(image, media_type=media)

    async def thumbnail(self, request: Request) -> Response:
        """A Dicomite extension (``dicom.retrieve.thumbnails``), guarded like WADO-RS retrieval."""
        media = rendered.negotiate(request.headers.get("accept"))
        pixels = thumbnails.size(request.query_params.get("size"))
        instance = await self.service.store.read_index(self._thumbnail_source, request.path_params)
        tag = thumbnails.etag(instance, media, pixels)
        headers = {"ETag": tag, "Cache-Control": thumbnails.CACHE_CONTROL, "Vary": "Accept"}
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        blobs, limit = self.service.blobs, self.service.max_inflated_bytes
        image = await run_blocking(thumbnails.thumbnail, blobs, instance, media, pixels, limit)
        return Response(image, media_type=media, headers=headers)

    def _thumbnail_source(self, params: dict[str, Any]) -> schema.StoredInstance:
        if "instance" in params:
            return self._instances(params)[0]
        with self.service.store.transaction() as connection:
            found = thumbnails.series_representative(connection, params["study"], params["series"])
        if found is None:
            raise NotFound(_not_found(params))
        return found

    async def delete(self, request: Request) -> Response:
        params = request.path_params
        await run_blocking(
            delete.delete_resource,
            self.service.store,
            self.service.blobs,
            params["study"],
            params.get("series"),
            params.get("instance"),
        )
        return Response(status_code=204)

    async def feed(self, request: Request) -> Response:
        params = {k.lower(): v for k, v in request.query_params.items()}
        return JSONResponse(await self.service.store.read_index(self._feed, params))

    def _feed(self, params: dict[str, str]) -> list[dict[str, Any]]:
        with self.service.store.transaction() as connection:
            return changefeed.read_feed(connection, params, self.version)

    async def latest(self, request: Request) -> Response:
        params = {k.lower(): v for k, v in request.query_params.items()}
        return JSONResponse(await self.service.store.read_index(self._latest, params))

    def _latest(self, params: dict[str, str]) -> dict[str, Any] | None:
        with self.service.store.transaction() as connection:
            return changefeed.latest(connection, params)


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
