"""Thin Starlette routes: discovery, keys and token. All logic lives in the identity core."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
            Route("/{tenant}/oauth2/v2.0/token", self.token_v2, methods=["GET", "POST"]),
            Route("/{tenant}/oauth2/token", self.token_v1, methods=["GET", "POST"]),
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

    async def token_v2(self, request: Request) -> Response:
        return await self._token(request, 2)

    async def token_v1(self, request: Request) -> Response:
        return await self._token(request, 1)

    async def _token(self, request: Request, version: int) -> Response:
        try:
            if request.method != "POST":
                raise errors.PostOnly(method=request.method)
            form = await read_form(request)
        except errors.TokenError as error:
            return _error(error)
        except ClientDisconnect:
            return Response(status_code=400)
        token_request = TokenRequest(
            tenant=request.path_params["tenant"],
            version=version,
            form=form,
            authorization=request.headers.get("authorization"),
            client_ip=request.client.host if request.client else None,
            client_request_id=request.headers.get("client-request-id"),
        )
        result = self._tokens.handle(token_request, utcnow())
        return JSONResponse(result.body, status_code=result.status, headers=result.headers)


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body, at most 1 MB, each field once (RFC 6749 §3.2)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise errors.MalformedBody(detail=f"Content-Type must be {FORM_TYPE}.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise errors.BodyTooLarge(limit=str(MAX_FORM_BYTES))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise errors.BodyTooLarge(limit=str(MAX_FORM_BYTES))
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


def _error(error: errors.TokenError) -> Response:
    correlation_id = unique_uuid()
    body: dict[str, Any] = error.body(
        trace_id=unique_uuid(), correlation_id=correlation_id, now=utcnow()
    )
    return JSONResponse(body, status_code=error.status, headers={**NO_STORE, **error.headers()})
