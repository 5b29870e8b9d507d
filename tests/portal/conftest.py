"""Portal tests: the whole ASGI app in-process on a prepared SQLite deployment, driven through
Starlette's TestClient over ``https://`` (so Secure cookies behave as in a browser).

``people`` creates a person per role; ``signed_in(role)`` returns a client with that person's
session. Browser tests (Chromium) live in tests/portal/browser/ and use a real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dicomite.app import create_app
from dicomite.bootstrap import Context, prepare
from dicomite.clock import utcnow
from dicomite.identity import users
from dicomite.identity.users import DicomDataRole, DirectoryRole
from tests.fixtures.stores import sqlite_url, store_settings

PASSWORD = "Correct-Horse-9"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def portal_context(data_dir: Path) -> Iterator[Context]:
    settings = store_settings(
        data_dir, sqlite_url(data_dir), http=False, public_url="https://testserver"
    )
    context = prepare(settings)
    yield context
    context.store.dispose()


class PortalClient(TestClient):
    """A browser-like client: follows redirects, keeps cookies, knows the CSRF token."""

    def csrf(self, path: str = "/portal/") -> str:
        match = CSRF_FIELD.search(self.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def submit(self, path: str, data: dict[str, str] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        """POST a portal form with this session's CSRF token, as the page would."""
        fields = {"csrf_token": self.csrf(), **(data or {})}
        return self.post(path, data=fields, **kwargs)  # type: ignore[arg-type]


def sign_in(client: PortalClient, name: str, password: str = PASSWORD) -> None:
    page = client.get("/portal/signin")
    token = CSRF_FIELD.search(page.text)
    assert token, page.text
    response = client.post(
        "/portal/signin",
        data={"csrf_token": token.group(1), "username": name, "password": password, "next": ""},
    )
    assert response.status_code == 200 and "Sign out" in response.text, response.text


@pytest.fixture
def portal_client(portal_context: Context) -> Iterator[PortalClient]:
    app = create_app(portal_context.settings)
    with PortalClient(app, base_url="https://testserver") as client:
        yield client


ROLES: dict[str, tuple[DirectoryRole | None, DicomDataRole | None]] = {
    "global-admin": (DirectoryRole.GLOBAL_ADMINISTRATOR, DicomDataRole.OWNER),
    "app-admin": (DirectoryRole.APPLICATION_ADMINISTRATOR, None),
    "developer": (DirectoryRole.APPLICATION_DEVELOPER, None),
    "reader": (None, DicomDataRole.READER),
    "owner": (None, DicomDataRole.OWNER),
    "nobody": (None, None),
}


@pytest.fixture
def person(portal_context: Context) -> Callable[[str], str]:
    """``person("developer")`` creates (once) a user with that role and returns the sign-in name."""

    def create(role: str) -> str:
        name = f"{role}@{portal_context.tenant_domain}"
        directory_role, dicom_role = ROLES[role]
        password = users.new_password(PASSWORD)  # hashed before the transaction, as the app does
        with portal_context.store.write() as session:
            if users.find_user(session, portal_context.tenant_id, name) is None:
                users.create_user(
                    session,
                    portal_context.tenant_id,
                    utcnow(),
                    user_principal_name=name,
                    display_name=role.replace("-", " ").title(),
                    password=password,
                    directory_role=directory_role,
                    dicom_role=dicom_role,
                )
        return name

    return create


@pytest.fixture
def signed_in(
    portal_context: Context, person: Callable[[str], str]
) -> Iterator[Callable[[str], PortalClient]]:
    """``signed_in("developer")``: a client with its own cookie jar, signed in with that role."""
    clients: list[PortalClient] = []

    def open_client(role: str) -> PortalClient:
        app = create_app(portal_context.settings)  # one app per client: each runs its lifespan
        client = PortalClient(app, base_url="https://testserver")
        client.__enter__()
        clients.append(client)
        sign_in(client, person(role))
        return client

    yield open_client
    for client in clients:
        client.__exit__(None, None, None)


def register_app(client: PortalClient, name: str = "Service client") -> str:
    """New registration through the portal; returns the application's object id."""
    response = client.submit("/portal/apps/new", {"name": name})
    assert response.status_code == 200, response.text
    found = re.search(r"/portal/apps/([0-9a-f-]{36})", str(response.url))
    assert found, response.url
    return found.group(1)


AdminApp = tuple[PortalClient, str]


@pytest.fixture
def admin_app(signed_in: Callable[[str], PortalClient]) -> AdminApp:
    """A Global Administrator's client and a new application of theirs."""
    admin = signed_in("global-admin")
    return admin, register_app(admin)
