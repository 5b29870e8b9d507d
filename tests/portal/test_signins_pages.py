"""Sign-in logs: Entra ID's service principal sign-ins, filters, paging and who sees which rows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dicomite.bootstrap import Context
from dicomite.identity.signins import SignInEvent, SignInRecorder, list_sign_ins
from tests.portal.conftest import PortalClient
from tests.portal.test_expose_pages import ESCAPED, XSS, app_id_of, register

SignedIn = Callable[[str], PortalClient]
DAY = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
UNKNOWN_CLIENT = "11111111-2222-3333-4444-555555555555"


def log(context: Context, *events: dict[str, Any]) -> None:
    """Write sign-in rows at once (a recorder without its thread writes on every record)."""
    recorder = SignInRecorder(context.store)
    for fields in events:
        recorder.record(event(context, **fields))


def event(context: Context, **fields: Any) -> SignInEvent:
    values: dict[str, Any] = {
        "tenant_id": context.tenant_id,
        "created_at": DAY,
        "app_id": UNKNOWN_CLIENT,
        "app_display_name": None,
        "service_principal_id": None,
        "resource": "https://dicom.healthcareapis.azure.com",
        "resource_display_name": "Azure Healthcare APIs",
        "resource_id": None,
        "error_code": 0,
        "failure_reason": None,
        "credential_type": "secret",
        "credential_key_id": None,
        "ip_address": "192.0.2.7",
        "correlation_id": str(uuid.uuid4()),
        **fields,
    }
    return SignInEvent(**values)


def table(page: str) -> str:
    """The rows of the sign-in table ("" when the page shows none)."""
    return page.split("<tbody>")[1].split("</tbody>")[0] if "<tbody>" in page else ""


def test_columns_and_newest_first(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("global-admin")
    log(
        portal_context,
        {"app_display_name": "Older app", "created_at": DAY - timedelta(hours=1)},
        {
            "app_display_name": "Newer app",
            "error_code": 7000215,
            "credential_type": "certificate",
            "failure_reason": "Invalid client secret provided.",
        },
    )
    page = admin.get("/portal/signins")
    assert page.status_code == 200
    for label in (
        "Date (UTC)",
        "Request ID",
        "Correlation ID",
        "Service principal name",
        "Application ID",
        "Resource",
        "Status",
        "Credential type",
        "IP address",
        "Service principal sign-ins",
    ):
        assert label in page.text
    rows = table(page.text)
    assert rows.index("Newer app") < rows.index("Older app")
    assert "Failure" in rows and "7000215" in rows and "Invalid client secret provided." in rows
    assert "Success" in rows and "Client certificate" in rows and "Client secret" in rows
    assert "2025-03-10 12:00:00" in rows and "192.0.2.7" in rows


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ({"status": "failure"}, ["Failing app"], ["Working app"]),
        ({"status": "success"}, ["Working app"], ["Failing app"]),
        ({"app": "WORKING"}, ["Working app"], ["Failing app"]),
        ({"app": "aaaaaaaa-0000"}, ["Failing app"], ["Working app"]),
        ({"app": "%"}, [], ["Working app", "Failing app"]),  # a literal %, not a wildcard
        ({"from": "2025-03-10", "to": "2025-03-10"}, ["Working app"], ["Failing app"]),
        ({"from": "2025-03-11"}, ["Failing app"], ["Working app"]),
        ({"to": "2025-03-09"}, [], ["Working app", "Failing app"]),
    ],
)
def test_filters(
    signed_in: SignedIn,
    portal_context: Context,
    query: dict[str, str],
    shown: list[str],
    hidden: list[str],
) -> None:
    admin = signed_in("global-admin")
    log(
        portal_context,
        {"app_display_name": "Working app", "app_id": "bbbbbbbb-0000-0000-0000-000000000000"},
        {
            "app_display_name": "Failing app",
            "app_id": "aaaaaaaa-0000-0000-0000-000000000000",
            "error_code": 7000215,
            "created_at": DAY + timedelta(days=1, hours=11),
        },
    )
    page = admin.get("/portal/signins", params=query)
    assert page.status_code == 200
    rows = table(page.text)
    assert all(name in rows for name in shown)
    assert not any(name in rows for name in hidden)
    if not shown:
        assert "No sign-ins match these filters." in page.text
    for value in query.values():  # the form shows the filters in force
        assert f'value="{value}"' in page.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "yesterday"}, "From must be a date"),
        ({"to": "9999-12-31"}, "To must be a date"),
        ({"from": "2025-03-11", "to": "2025-03-10"}, "on or before the To date"),
    ],
)
def test_bad_dates_are_explained(signed_in: SignedIn, query: dict[str, str], message: str) -> None:
    page = signed_in("global-admin").get("/portal/signins", params=query)
    assert page.status_code == 400 and 'class="error-box"' in page.text and message in page.text


def test_pages_of_fifty(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("global-admin")
    log(
        portal_context,
        *(
            {"app_display_name": f"App {n:03d}", "created_at": DAY - timedelta(minutes=n)}
            for n in range(60)
        ),
    )
    first = admin.get("/portal/signins", params={"status": "success"})
    assert table(first.text).count("<tr>") == 50 and "App 049" in first.text
    assert "App 050" not in first.text and "Previous page" not in first.text
    assert 'href="/portal/signins?status=success&amp;skip=50"' in first.text
    second = admin.get("/portal/signins", params={"status": "success", "skip": "50"})
    assert table(second.text).count("<tr>") == 10 and "App 059" in second.text
    assert "Next page" not in second.text and "Showing 51\u201360" in second.text
    assert 'href="/portal/signins?status=success"' in second.text  # previous: the first page
    beyond = admin.get("/portal/signins", params={"skip": "999999999999"})
    assert beyond.status_code == 200


def test_developers_see_only_their_own_apps(signed_in: SignedIn, portal_context: Context) -> None:
    developer = signed_in("developer")
    mine = app_id_of(portal_context, register(developer, "Mine"))
    others = app_id_of(portal_context, register(signed_in("app-admin"), "Theirs"))
    log(
        portal_context,
        {"app_id": mine, "app_display_name": "Mine"},
        {"app_id": others, "app_display_name": "Theirs"},
        {"app_display_name": None, "error_code": 700016},
    )
    seen = table(developer.get("/portal/signins").text)
    assert mine in seen and others not in seen and UNKNOWN_CLIENT not in seen
    everything = table(signed_in("app-admin").get("/portal/signins").text)
    assert mine in everything and others in everything and UNKNOWN_CLIENT in everything
    assert "Unknown application" in everything


def test_people_without_a_directory_role_may_not_look(signed_in: SignedIn) -> None:
    for role in ("reader", "owner", "nobody"):
        assert signed_in(role).get("/portal/signins").status_code == 403


def test_logged_text_is_escaped(signed_in: SignedIn, portal_context: Context) -> None:
    log(
        portal_context,
        {"app_display_name": XSS, "failure_reason": XSS, "error_code": 7000215, "resource": XSS},
    )
    page = signed_in("global-admin").get("/portal/signins").text
    assert XSS not in page and page.count(ESCAPED) == 3


def ask_with_a_wrong_secret(client: Any, context: Context, app_id: str) -> None:
    """A real client-credentials request for the DICOM service that fails (AADSTS7000215)."""
    answer = client.post(
        f"/{context.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app_id,
            "client_secret": "not-the-secret",
            "scope": "https://dicom.healthcareapis.azure.com/.default",
        },
    )
    assert answer.status_code == 401


def test_a_real_token_request_appears(signed_in: SignedIn, portal_context: Context) -> None:
    """Through the token endpoint and the buffered recorder, not by writing rows."""
    admin = signed_in("global-admin")
    app_id = app_id_of(portal_context, register(admin, "Wrong secret client"))
    ask_with_a_wrong_secret(admin, portal_context, app_id)
    deadline = time.monotonic() + 10
    while app_id not in (rows := table(admin.get("/portal/signins").text)):
        assert time.monotonic() < deadline, "the sign-in was not logged"
        time.sleep(0.1)
    assert "Wrong secret client" in rows and "Failure" in rows and "7000215" in rows


def test_list_sign_ins_filters_in_the_database(portal_context: Context) -> None:
    log(
        portal_context,
        {"app_display_name": "50%_off", "created_at": DAY},
        {"app_display_name": "500 off", "created_at": DAY + timedelta(days=1)},
    )

    def names(**filters: Any) -> list[str | None]:
        with portal_context.store.read() as session:
            rows = list_sign_ins(session, portal_context.tenant_id, **filters)
            return [r.app_display_name for r in rows]

    assert names(app_contains="0%_") == ["50%_off"]
    assert names(until=DAY + timedelta(days=1)) == ["50%_off"]  # until is exclusive
    assert names(since=DAY + timedelta(days=1)) == ["500 off"]
    assert names(app_ids=set()) == []
    assert names(app_ids={UNKNOWN_CLIENT}) == ["500 off", "50%_off"]
    assert names(failures_only=True) == [] and len(names(successes_only=True)) == 2


def test_a_failed_sign_in_names_its_resource_as_a_successful_one_does(
    signed_in: SignedIn, portal_context: Context
) -> None:
    """A real token request with a wrong secret: its row names the DICOM service, not only its
    URI (the log records the display name only once the client has authenticated)."""
    admin = signed_in("global-admin")
    client_id = app_id_of(portal_context, register(admin, "Wrong secret client"))
    ask_with_a_wrong_secret(admin, portal_context, client_id)
    deadline = time.monotonic() + 10
    while "Failure" not in (rows := table(admin.get("/portal/signins").text)):
        assert time.monotonic() < deadline, "the failed sign-in was not logged"
        time.sleep(0.1)
    [row] = [r for r in rows.split("</tr>") if client_id in r]
    assert "Azure Healthcare APIs (DICOM service)<br>" in row, row
