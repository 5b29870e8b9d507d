"""Every portal route, with hostile path parameters, query strings and form bodies: an error
page or a redirect, never a 500."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from starlette.routing import Mount, Route

from dicomite.app import create_app
from dicomite.bootstrap import Context
from tests.portal.conftest import PortalClient

HOSTILE = [
    "..",
    "%2e%2e%2f%2e%2e",
    "x" * 300,
    "1.2.3",
    "00000000-0000-0000-0000-000000000000",
    "<script>",
    "%00",
    "é",
    "1" * 70,
]
QUERIES = (
    "?search=%00&limit=-1&offset=abc&skip=-5&frame=0&window=lung&type=nope&tab=x&from=2024-13-99"
)


def portal_routes(context: Context) -> list[Route]:
    app = create_app(context.settings)
    portal = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/portal")
    return [r for r in portal.routes if isinstance(r, Route)]


def fill(path: str, value: str) -> str:
    return "/portal" + re.sub(r"\{[^}]+\}", value, path)


@pytest.mark.parametrize("value", HOSTILE)
def test_no_route_fails_on_hostile_input(
    signed_in: Callable[[str], PortalClient], portal_context: Context, value: str
) -> None:
    client = signed_in("global-admin")
    token = client.csrf()
    for route in portal_routes(portal_context):
        path = fill(route.path, value)
        for method in sorted(route.methods or []):
            if method == "HEAD" or route.path == "/signout":
                continue
            if method == "GET":
                response = client.get(path + QUERIES, follow_redirects=False)
            else:
                form = {
                    "csrf_token": token,
                    "name": value,
                    "description": value,
                    "expires": value,
                    "permission": value,
                    "password": value,
                }
                response = client.post(path, data=form, follow_redirects=False)
            assert response.status_code < 500, (method, path, response.text[:300])
