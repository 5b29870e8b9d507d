"""``dicomite signins``."""

from __future__ import annotations

import uuid
from datetime import timedelta

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity.signins import SignInEvent, SignInRecorder
from tests.cli.conftest import Cli


def record(context: Context, app_id: str, name: str | None, code: int = 0, **extra: str) -> None:
    reason = "Invalid client secret provided." if code else None
    event = SignInEvent(
        tenant_id=context.tenant_id,
        created_at=utcnow() - timedelta(seconds=1),
        app_id=app_id,
        app_display_name=name,
        service_principal_id=None,
        resource="https://dicom.healthcareapis.azure.com",
        resource_display_name="Azure Healthcare APIs (DICOM service)",
        resource_id=None,
        error_code=code,
        failure_reason=reason,
        credential_type="secret",
        credential_key_id=extra.get("key_id"),
        ip_address="127.0.0.1",
        correlation_id=str(uuid.uuid4()),
    )
    SignInRecorder(context.store).record(event)  # not started: writes at once


def test_lists_successes_and_failures(cli: Cli, context: Context) -> None:
    created = cli.create()
    app_id, name = created["appId"], created["displayName"]
    key_id = str(uuid.uuid4())
    record(context, app_id, name, key_id=key_id)
    record(context, app_id, name, code=7000215)
    rows = cli.json("signins", "--app", name)
    assert sorted(r["result"] for r in rows) == [
        "AADSTS7000215: Invalid client secret provided.",
        "Success",
    ]
    assert {r["appId"] for r in rows} == {app_id}
    assert key_id in {r["credentialKeyId"] for r in rows}
    failures = cli.json("signins", "--app", app_id, "--failures")
    assert [r["errorCode"] for r in failures] == [7000215]
    assert len(cli.json("signins", "--app", app_id, "--limit", "1")) == 1
    table = cli.ok("signins", "--app", app_id).stdout
    assert "AADSTS7000215" in table
    assert "Success" in table
    assert "127.0.0.1" in table


def test_unknown_client_ids_can_be_filtered_too(cli: Cli, context: Context) -> None:
    stranger = str(uuid.uuid4())
    record(context, stranger, None, code=700016)
    assert [r["errorCode"] for r in cli.json("signins", "--app", stranger)] == [700016]
    assert "No application 'nobody'" in cli.fails("signins", "--app", "nobody")
    assert cli.json("signins", "--app", str(uuid.uuid4())) == []
