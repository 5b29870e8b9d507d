"""The portal of a running ``dicomite serve``, driven over HTTPS as a browser would: one
``httpx`` client per person keeps the session cookie; forms carry the page's CSRF token."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from dicomite.identity import credentials, directory
from dicomite.store.tables import Application
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class PortalSession:
    def __init__(self, server: Server, name: str, password: str) -> None:
        self.client = server.client()
        self.client.follow_redirects = True
        signed_in = self.submit(
            "/portal/signin",
            {"username": name, "password": password, "next": ""},
            csrf_from="/portal/signin",
        )
        assert signed_in.status_code == 200 and "Sign out" in signed_in.text, signed_in.text

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def submit(
        self, path: str, data: dict[str, str], *, csrf_from: str = "/portal/", **kwargs: Any
    ) -> httpx.Response:
        """POST a form with the CSRF token a page of this session carries."""
        found = CSRF_FIELD.search(self.client.get(csrf_from).text)
        assert found, f"no CSRF token on {csrf_from}"
        return self.client.post(path, data={"csrf_token": found.group(1), **data}, **kwargs)

    def close(self) -> None:
        self.client.close()


def new_person(server: Server, role: str) -> PortalSession:
    """A new user with a directory role (``application-administrator`` …), signed in."""
    name, password = f"{role}-{uuid.uuid4().hex[:8]}@dicomite.localhost", "Corr3ct-Horse-9!"
    server.cli("users", "add", name, "--role", role, "--password-stdin", stdin=f"{password}\n")
    return PortalSession(server, name, password)


def stored_app(admin: Admin, app_id: str) -> Application:
    with admin.context.store.read() as session:
        return directory.get_application_by_app_id(session, admin.context.tenant_id, app_id)


def secret_ids(admin: Admin, app_id: str) -> set[str]:
    with admin.context.store.read() as session:
        app = directory.get_application_by_app_id(session, admin.context.tenant_id, app_id)
        return {c.key_id for c in credentials.list_passwords(session, app)}
