"""The built-in "DICOM viewer" app registration: the public client (single-page application)
that the OHIF viewer at ``{public_url}/viewer/`` signs people in with (authorization code with
PKCE).

``dicomite serve`` registers it when the tenant has none, as the portal registers any app: the
application and its service principal, asking for the DICOM service's delegated
``user_impersonation``, with admin consent granted for everyone (an ``AllPrincipals``
permission grant) so that people meet no consent page. It is listed and editable like any app.
Dicomite changes it afterwards only to add the callback of the address it serves at, so that a
changed ``--public-url`` or port keeps the viewer working. Its appId is derived from the
tenant's id: every host of a deployment names the same registration, and the viewer's
generated configuration needs no lookup.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from dicomite.identity import builtin, consent, directory
from dicomite.identity.permission_kind import PermissionKind
from dicomite.identity.problems import InvalidInput
from dicomite.identity.validation import check_redirect_uri
from dicomite.store.tables import Application

VIEWER_APP_NAME = "DICOM viewer"
CALLBACK_PATH = "/viewer/callback"
PLATFORM = "spa"
_APP_ID_NAMESPACE = uuid.UUID("67b5c369-310e-4eb9-95c7-18f4cbe02e1f")


def viewer_app_id(tenant_id: str) -> str:
    return str(uuid.uuid5(_APP_ID_NAMESPACE, tenant_id))


def callback_uri(public_url: str) -> str:
    return public_url.rstrip("/") + CALLBACK_PATH


def ensure_viewer_app(
    session: Session, tenant_id: str, public_url: str, now: datetime
) -> InvalidInput | None:
    """The registration, made if missing, with this address's callback among its SPA redirect
    URIs; returns why that callback cannot be one (plain http off localhost), if it cannot."""
    app = directory.find_application_by_app_id(session, tenant_id, viewer_app_id(tenant_id))
    if app is None:
        app = _register(session, tenant_id, now)
    uri = callback_uri(public_url)
    try:
        check_redirect_uri(uri, PLATFORM)
    except InvalidInput as refusal:
        return refusal
    if uri not in directory.redirect_uris_of(app, PLATFORM):
        directory.add_redirect_uri(session, app, PLATFORM, uri)
    return None


def _register(session: Session, tenant_id: str, now: datetime) -> Application:
    dicom_access = {
        "resourceAppId": builtin.DICOM_APP_ID,
        "resourceAccess": [
            {"id": builtin.DICOM_USER_IMPERSONATION, "type": PermissionKind.SCOPE.value}
        ],
    }
    app, _principal = directory.register_app(
        session,
        tenant_id,
        now,
        VIEWER_APP_NAME,
        app_id=viewer_app_id(tenant_id),
        required_resource_access=[dicom_access],
    )
    consent.grant_admin_consent(session, app, now)
    return app
