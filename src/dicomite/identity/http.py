"""Thin Starlette routes: discovery, keys, device authorization and token. All logic lives in
the identity core."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, TypeVar, TypeVarTuple
from urllib.parse import parse_qsl

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from dicomite.blocking import run_blocking
from dicomite.client_address import TrustedProxies, client_address
from dicomite.clock import utcnow
from dicomite.cors import ANY_ORIGIN_HEADERS
from dicomite.identity import errors
from dicomite.identity.discovery import openid_configuration
from dicomite.identity.keys import KeyRing
from dicomite.identity.oauth2 import NO_STORE, TokenRequest, TokenResponse, TokenService
from dicomite.identity.spa_cors import SpaCors
from dicomite.identity.tokens import issuer
from dicomite.ids import unique_uuid

Args = TypeVarTuple("Args")
T = TypeVar("T")
MAX_FORM_BYTES = 1024 * 1024
MAX_FORM_FIELDS = 100
FORM_TYPE = "application/x-www-form-urlencoded"


class IdentityRoutes:
    def __init__(self, tokens: TokenService, keys: KeyRing) -> None:
        self._tokens = tokens
        self._keys = keys
        self._cors = SpaCors(tokens.view)

    def routes(self) -> list[Route]:
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.discovery_v2),
            Route("/{tenant}/.well-known/openid-configuration", self.discovery_v1),
            Route("/{tenant}/discovery/v2.0/keys", self.keys_v2),
            Route("/{tenant}/discovery/keys", self.keys_v1),
            Route(
                "/{tenant}/oauth2/v2.0/devicecode", self.device_code, methods=["POST", "OPTIONS"]
            ),
        ]

    async def discovery_v2(self, request: Request) -> Response:
        return self._discovery(request, 2)

    async def discovery_v1(self, request: Request) -> Response:
        return self._discovery(request, 1)

    def _discovery(self, request: Request, version: int) -> Response:
        tenant = self._tokens.view.tenant(request.path_params["tenant"])
        if tenant is None:
            return _public(_error(errors.InvalidTenant(tenant=request.path_params["tenant"][:100])))
        body = openid_configuration(self._tokens.public_url, tenant.id, version)
        return _public(JSONResponse(body, headers={"Cache-Control": "max-age=86400, private"}))

    async def keys_v2(self, request: Request) -> Response:
        return self._jwks(request, 2)

    async def keys_v1(self, request: Request) -> Response:
        return self._jwks(request, 1)

    def _jwks(self, request: Request, version: int) -> Response:
        tenant = self._tokens.view.tenant(request.path_params["tenant"])
        if tenant is None:
            return _public(_error(errors.InvalidTenant(tenant=request.path_params["tenant"][:100])))
        key_issuer = issuer(self._tokens.public_url, tenant.id, 2) if version == 2 else None
        body = self._keys.jwks(utcnow(), key_issuer)
        return _public(JSONResponse(body, headers={"Cache-Control": "max-age=300, private"}))

    async def device_code(self, request: Request) -> Response:
        """The device authorization endpoint (RFC 8628 §3.1), in the blocking pool: it writes.
        Browsers may call it from the origins ``SpaCors`` allows, as the token endpoint."""
        headers, tenant = dict(request.headers), request.path_params["tenant"]
        if request.method == "OPTIONS":
            status, cors = await _reading(self._cors, self._cors.preflight, tenant, headers)
            return Response(status_code=status, headers=cors)
        cors = await cross_origin(self._cors, tenant, headers.get("origin"))
        try:
            form = await read_form(headers, request.receive)
        except errors.TokenError as error:
            return _error(error, cors)
        except ClientDisconnect:
            return Response(status_code=400)
        device_request = TokenRequest(
            tenant=tenant, version=2, form=form, client_request_id=headers.get("client-request-id")
        )
        result = await run_blocking(self._tokens.authorize_device, device_request, utcnow())
        return JSONResponse(
            result.body, status_code=result.status, headers={**result.headers, **cors}
        )


class Target(NamedTuple):
    tenant: str  # as the path names it: an id or a domain
    version: int  # 1 for /oauth2/token, 2 for /oauth2/v2.0/token


class TokenEndpoint:
    """``POST /{tenant}/oauth2/v2.0/token`` and ``/oauth2/token``, served in plain ASGI.

    The token endpoint is the service's hottest path, so the app factory puts it in front of
    the router (see ``target``): it costs one regular expression instead of the middleware
    stack, route table and request/response objects. A request that may write to the store
    (``TokenService.blocks``) is handled in the blocking pool; the others only read in-memory
    caches, and are handled here, on the event loop.

    Browsers of single-page applications call it cross-origin, preflights included, from the
    origins ``SpaCors`` allows.
    """

    PATH = re.compile(r"^/([^/]{1,256})/oauth2/(v2\.0/)?token/?$")

    def __init__(self, tokens: TokenService, trusted: TrustedProxies) -> None:
        self._tokens = tokens
        self._trusted = trusted  # whose X-Forwarded-For names the client (the sign-in log)
        self._cors = SpaCors(tokens.view)

    def target(self, scope: Scope) -> Target | None:
        """The tenant and endpoint version a request is for; None if it is not for us."""
        if scope["type"] != "http":
            return None
        found = self.PATH.match(scope["path"])
        if found is None:
            return None
        return Target(found.group(1), 2 if found.group(2) else 1)

    async def serve(self, target: Target, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            status, cors = await _reading(self._cors, self._cors.preflight, target.tenant, headers)
            await _send(send, status, b"", None, cors)
            return
        try:
            if scope["method"] != "POST":
                raise errors.PostOnly(method=scope["method"][:16])
            form = await read_form(headers, receive)
        except errors.TokenError as error:
            cors = await cross_origin(self._cors, target.tenant, origin)
            await _send_json(
                send, error.status, _error_body(error), {**NO_STORE, **error.headers(), **cors}
            )
            return
        except ClientDisconnect:
            return
        token_request = TokenRequest(
            tenant=target.tenant,
            version=target.version,
            form=form,
            authorization=headers.get("authorization"),
            client_ip=self._client_address(scope),
            client_request_id=headers.get("client-request-id"),
            origin=origin,
        )
        if self._tokens.blocks(token_request):
            result, cors = await run_blocking(self._answer, target, token_request, utcnow())
        else:
            result, cors = self._answer(target, token_request, utcnow())
        await _send_json(send, result.status, result.body, {**result.headers, **cors})

    def _answer(
        self, target: Target, request: TokenRequest, now: datetime
    ) -> tuple[TokenResponse, dict[str, str]]:
        """The token response and its CORS headers: both where reads may wait, in one hop."""
        return self._tokens.handle(request, now), self._cors.headers(target.tenant, request.origin)

    def _client_address(self, scope: Scope) -> str | None:
        client = scope.get("client")
        if not client:
            return None
        forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
        return client_address(client[0], forwarded, self._trusted)


async def read_form(headers: dict[str, str], receive: Receive) -> dict[str, str]:
    """The urlencoded body, at most 1 MB, each field once (RFC 6749 §3.2)."""
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise errors.MalformedBody(detail=f"Content-Type must be {FORM_TYPE}.")
    declared = headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise errors.BodyTooLarge(limit=str(MAX_FORM_BYTES))
    body = await _read_body(receive)
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise errors.MalformedBody(detail="The body is not valid UTF-8 form data.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise errors.DuplicateParameter(parameter=name[:100])
        form[name] = value
    return form


async def _read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            raise errors.BodyTooLarge(limit=str(MAX_FORM_BYTES))
        if not message.get("more_body", False):
            return bytes(body)


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    content = orjson.dumps(body)  # compact, as json.dumps with separators, and faster
    await _send(send, status, content, "application/json; charset=utf-8", headers)


async def _send(
    send: Send, status: int, content: bytes, media_type: str | None, headers: dict[str, str]
) -> None:
    raw_headers = [
        *([(b"content-type", media_type.encode())] if media_type else []),
        (b"content-length", str(len(content)).encode()),
        *(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": content})


def _error_body(error: errors.TokenError) -> dict[str, Any]:
    return error.body(trace_id=unique_uuid(), correlation_id=unique_uuid(), now=utcnow())


def _error(error: errors.TokenError, cors: dict[str, str] | None = None) -> Response:
    headers = {**NO_STORE, **error.headers(), **(cors or {})}
    return JSONResponse(_error_body(error), status_code=error.status, headers=headers)


async def cross_origin(cors: SpaCors, tenant_reference: str, origin: str | None) -> dict[str, str]:
    """``SpaCors.headers``; nothing to look up without an ``Origin`` header."""
    if origin is None:
        return {}
    return await _reading(cors, cors.headers, tenant_reference, origin)


async def _reading(cors: SpaCors, call: Callable[[*Args], T], *args: *Args) -> T:
    """``call``'s answer, which may read the store: here when a read is work in this process
    (SQLite), in the blocking pool when it waits on the network (PostgreSQL)."""
    if cors.reads_in_process:
        return call(*args)
    return await run_blocking(call, *args)


def _public(response: Response) -> Response:
    """Discovery and keys are public documents: any page may read them, errors included."""
    response.headers.update(ANY_ORIGIN_HEADERS)
    return response
