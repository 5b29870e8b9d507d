"""Configured permissions through the domain functions the portal and CLI share."""

from __future__ import annotations

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import builtin, consent, directory, principals
from dicomite.identity.permission_kind import PermissionKind


def test_adding_a_configured_permission_again_changes_nothing(context: Context) -> None:
    with context.store.write() as session:
        app = directory.create_application(session, context.tenant_id, utcnow(), "Twice")
        dicom = principals.find_resource(session, context.tenant_id, builtin.DICOM_APP_ID)
        assert dicom is not None
        for _ in range(2):
            consent.add_permission(
                session, app, dicom, builtin.DICOM_READWRITE, PermissionKind.ROLE
            )
        assert app.required_resource_access == [
            {
                "resourceAppId": builtin.DICOM_APP_ID,
                "resourceAccess": [{"id": builtin.DICOM_READWRITE, "type": "Role"}],
            }
        ]
