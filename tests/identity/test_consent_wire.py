"""Admin consent decides the roles of tokens issued afterwards."""

from __future__ import annotations

import jwt

from tests.fixtures.directory import DICOM_SCOPE, Admin
from tests.fixtures.server import Server
from tests.identity.test_tokens import token_for


def roles(server: Server, app: object) -> list[str] | None:
    token = token_for(server, app, DICOM_SCOPE)["access_token"]  # type: ignore[arg-type]
    return jwt.decode(token, options={"verify_signature": False}).get("roles")


def test_roles_follow_consent(server: Server, admin: Admin) -> None:
    app = admin.register(roles=("Dicom.ReadWrite", "Dicom.Read"), grant=False)
    assert roles(server, app) is None
    admin.consent(app.app_id)
    assert sorted(roles(server, app) or []) == ["Dicom.Read", "Dicom.ReadWrite"]
    admin.revoke(app.app_id)
    assert roles(server, app) is None
    admin.consent(app.app_id)
    assert roles(server, app) is not None


def test_removed_secret_stops_working_at_once(server: Server, admin: Admin) -> None:
    app = admin.register(roles=("Dicom.Read",))
    assert roles(server, app) == ["Dicom.Read"]
    assert app.secret_key_id is not None
    admin.remove_secret(app.app_id, app.secret_key_id)
    from tests.identity.wire import assert_aadsts, post_token

    data = {
        "grant_type": "client_credentials",
        "client_id": app.app_id,
        "client_secret": app.secret or "",
        "scope": DICOM_SCOPE,
    }
    assert_aadsts(post_token(server, data), 401, "invalid_client", 7000215)


def test_several_secrets_coexist(server: Server, admin: Admin) -> None:
    app = admin.register(roles=("Dicom.Read",))
    second, _ = admin.add_secret(app.app_id)
    assert roles(server, app) == ["Dicom.Read"]
    app.secret = second
    assert roles(server, app) == ["Dicom.Read"]
