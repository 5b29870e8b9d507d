"""Requests to the resource-manager surface of the shared server."""

from __future__ import annotations

import httpx

from tests.fixtures.server import Server

API_VERSION = "2022-12-01"
ARM_SCOPE = "https://management.core.windows.net//.default"  # what az asks for


def arm_get(server: Server, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with server.client() as client:
        return client.get(path, params={"api-version": API_VERSION}, headers=headers)
