"""Thin Starlette routes: discovery, keys, device authorization and token. All logic lives in
the identity core."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from dicomite.blocking import run_blocking
from dicomite.client_address import TrustedProxies, client_address
from dicomite.clock import utcnow
from dicomite.identity import errors
from dicomite.identity.discovery import openid_configuration
from dicomite.identity.keys import KeyRing
from dicomite.identity.oauth2 import NO_STORE, TokenRequest, TokenService
from dicomite.identity.tokens import issuer
from dicomite.ids import unique_uuid

MAX_FORM_BYTES = 1024 * 1024
MAX_FORM_FIELDS = 100
FORM_TYPE = "application/x-www-form-urlencoded"


class IdentityRoutes:
    def __init__(self, tokens: TokenService, keys: KeyRing) -> None:
        self._tokens = tokens
        self._keys = keys

    def routes(self) -> list[Route]:
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.discovery_v2),
            Route("/{tenant}/.well-known/openid-configuration", self.discovery_v1),
            Route("/{tenant}/discovery/v2.0/keys", self.keys_v2),
            Route("/{tenant}/discovery/keys", self.keys_v1),
            Route("/{tenant}/oauth2/v2.0/devicecode", self.device_code, methods=["POST"]),
        ]

    async def discovery_v2(self, request: Request) -> Response:
        return self._discovery(request, 2)

    async def discovery_v1(self, request: Request) -> Response:
        return self._discovery(request, 1)

    def _discovery(self, request: Request, version: int) -> Response:
        tenant = self._tokens.view.tenant(request.path_params["tenant"])
        if tenant is None:
            return _error(errors.InvalidTenant(tenant=request.path_params["tenant"][:100]))
        body = openid_configuration(self._tokens.public_url, tenant.id, version)
        return JSONResponse(body, headers={"Cache-Control": "max-age=86400, private"})

    async def keys_v2(self, request: Request) -> Response:
        return self._jwks(request, 2)

    async def keys_v1(self, request: Request) -> Response:
        return self._jwks(request, 1)

    def _jwks(self, request: Request, version: int) -> Response:
        tenant = self._tokens.view.tenant(request.path_params["tenant"])
        if tenant is None:
            return _error(errors.InvalidTenant(tenant=request.path_params["tenant"][:100]))
        key_issuer = issuer(self._tokens.public_url, tenant.id, 2) if version == 2 else None
        body = self._keys.jwks(utcnow(), key_issuer)
        return JSONResponse(body, headers={"Cache-Control": "max-age=300, private"})

    async def device_code(self, request: Request) -> Response:
        """The device authorization endpoint (RFC 8628 §3.1), in the blocking pool: it writes."""
        headers = dict(request.headers)
        try:
            form = await read_form(headers, request.receive)
        except errors.TokenError as error:
            return _error(error)
        except ClientDisconnect:
            return Response(status_code=400)
        device_request = TokenRequest(
            tenant=request.path_params["tenant"],
            version=2,
            form=form,
            client_request_id=headers.get("client-request-id"),
        )
        result = await run_blocking(self._tokens.authorize_device, device_request, utcnow())
        return JSONResponse(result.body, status_code=result.status, headers=result.headers)


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
    """

    PATH = re.compile(r"^/([^/]{1,256})/oauth2/(v2\.0/)?token/?$")

    def __init__(self, tokens: TokenService, trusted: TrustedProxies) -> None:
        self._tokens = tokens
        self._trusted = trusted  # whose X-Forwarded-For names the client (the sign-in log)

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
        try:
            if scope["method"] != "POST":
                raise errors.PostOnly(method=scope["method"][:16])
            form = await read_form(headers, receive)
        except errors.TokenError as error:
            await _send_json(
                send, error.status, _error_body(error), {**NO_STORE, **error.headers()}
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
            origin=headers.get("origin"),
        )
        if self._tokens.blocks(token_request):
            result = await run_blocking(self._tokens.handle, token_request, utcnow())
        else:
            result = self._tokens.handle(token_request, utcnow())
        await _send_json(send, result.status, result.body, result.headers)

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
    content = json.dumps(body, separators=(",", ":")).encode()
    raw_headers = [
        (b"content-type", b"application/json; charset=utf-8"),
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


def _error(error: errors.TokenError) -> Response:
    headers = {**NO_STORE, **error.headers()}
    return JSONResponse(_error_body(error), status_code=error.status, headers=headers)
