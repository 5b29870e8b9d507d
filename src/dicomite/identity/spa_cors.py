"""Entra ID's CORS rule for the endpoints a single-page application's browser calls, the token
endpoint and the device authorization endpoint: a cross-origin request is answered for the
page only from the origin of one of the tenant's SPA redirect URIs (``IssuanceView``'s
``spa_origins``, cached per directory version). Other origins get no CORS headers, so the
browser keeps the answer from the page.

Only a request with an ``Origin`` header (a browser's cross-origin call) costs a look-up: a
service client sends none, and its request reads nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping

from dicomite.cors import allowed_origin_headers, preflight_headers
from dicomite.identity.issuance import IssuanceView

DISALLOWED = 400  # a preflight's answer to an origin, method or request that is not allowed
ALLOWED = 204


class SpaCors:
    def __init__(self, view: IssuanceView) -> None:
        self._view = view

    @property
    def reads_in_process(self) -> bool:
        return self._view.reads_in_process

    def headers(self, tenant_reference: str, origin: str | None) -> dict[str, str]:
        """What lets a page on ``origin`` read the response (none for other origins)."""
        if origin is None:
            return {}
        tenant = self._view.tenant(tenant_reference)
        if tenant is None or origin not in self._view.spa_origins(tenant.id):
            return {}
        return allowed_origin_headers(origin)

    def preflight(
        self, tenant_reference: str, request_headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str]]:
        """The status and headers answering a CORS preflight (Fetch §3.2.2): a POST from an
        allowed origin may send the headers it asks for."""
        origin = request_headers.get("origin")
        allowed = self.headers(tenant_reference, origin)
        method = request_headers.get("access-control-request-method")
        if origin is None or not allowed or method != "POST":
            return DISALLOWED, {}
        requested = request_headers.get("access-control-request-headers")
        return ALLOWED, preflight_headers(origin, requested)
