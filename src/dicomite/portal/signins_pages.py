"""Sign-in logs: Entra ID's "Service principal sign-ins", newest first, filterable by date,
application and status, 50 a page.

Administrators see every row, failed requests of unknown clients included; an Application
Developer sees the sign-ins of the applications they own.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from dicomite.identity import directory, policy, principals, signins
from dicomite.portal.enterprise_pages import require_directory_role
from dicomite.portal.web import Page, Portal, portal_url
from dicomite.store.tables import SignIn

PAGE_SIZE = 50
MAX_SKIP = 1_000_000
STATUSES = {"": "All", "success": "Success", "failure": "Failure"}
CREDENTIAL_TYPES = {
    "secret": "Client secret",
    "certificate": "Client certificate",
    "federated": "Federated identity credential",
}


def routes(portal: Portal) -> list[Route]:
    return [portal.route("/signins", sign_in_logs)]


@dataclass(frozen=True)
class Filters:
    start: str = ""
    end: str = ""
    app: str = ""
    status: str = ""

    def query(self, **extra: str) -> dict[str, str]:
        return {"from": self.start, "to": self.end, "app": self.app, "status": self.status, **extra}


def sign_in_logs(page: Page) -> Response:
    require_directory_role(page)
    filters = Filters(
        page.query.get("from", "").strip(),
        page.query.get("to", "").strip(),
        page.query.get("app", "").strip()[:256],
        page.query.get("status", ""),
    )
    skip = _number(page.query.get("skip", ""))
    try:
        since, until = _day(filters.start, "From"), _day(filters.end, "To", end=True)
    except ValueError as problem:
        return _render(page, filters, [], skip, error=str(problem), status=400)
    if since and until and since >= until:
        error = "The From date must be on or before the To date."
        return _render(page, filters, [], skip, error=error, status=400)
    with page.read() as session:
        rows = signins.list_sign_ins(
            session,
            page.tenant_id,
            app_ids=_visible_clients(page, session),
            app_contains=filters.app or None,
            failures_only=filters.status == "failure",
            successes_only=filters.status == "success",
            since=since,
            until=until,
            limit=PAGE_SIZE + 1,
            offset=skip,
        )
        names = _resource_names(session, page.tenant_id, rows[:PAGE_SIZE])
    return _render(page, filters, list(rows), skip, names=names)


def _resource_names(session: Session, tenant_id: str, rows: Sequence[SignIn]) -> dict[str, str]:
    """Display names of the resources that rows name only by URI or appId: a failed request is
    logged before its resource is resolved, yet the page names the resource as for a success."""
    unnamed = {row.resource for row in rows if row.resource and not row.resource_display_name}
    found = {name: principals.find_resource(session, tenant_id, name) for name in unnamed}
    return {name: sp.display_name for name, sp in found.items() if sp is not None}


def _render(
    page: Page,
    filters: Filters,
    rows: list[SignIn],
    skip: int,
    error: str = "",
    status: int = 200,
    names: dict[str, str] | None = None,
) -> Response:
    more = len(rows) > PAGE_SIZE
    following = portal_url("/signins", **filters.query(skip=str(skip + PAGE_SIZE)))
    return page.render(
        "signins.html",
        status,
        title="Sign-in logs",
        filters=filters,
        statuses=STATUSES,
        rows=rows[:PAGE_SIZE],
        error=error,
        first=skip + 1,
        next_url=following if more else "",
        previous_url=_previous(filters, skip),
        credential_types=CREDENTIAL_TYPES,
        resource_names=names or {},
    )


def _previous(filters: Filters, skip: int) -> str:
    if skip <= 0:
        return ""
    back = max(skip - PAGE_SIZE, 0)
    return portal_url("/signins", **filters.query(skip=str(back) if back else ""))


def _visible_clients(page: Page, session: Session) -> Collection[str] | None:
    """None (every row) for administrators; otherwise the appIds of the apps they manage."""
    if policy.can_read_all_sign_ins(page.user):
        return None
    apps = directory.list_applications(session, page.tenant_id)
    return {a.app_id for a in apps if policy.can_manage_application(page.user, a)}


def _day(value: str, label: str, *, end: bool = False) -> datetime | None:
    """A date field as a UTC instant: its midnight, or (``end``) the next one."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
    except (ValueError, OverflowError):
        raise ValueError(f"{label} must be a date like 2025-01-31.") from None
    return datetime.combine(day, time(), tzinfo=UTC)


def _number(value: str) -> int:
    return min(int(value), MAX_SKIP) if value.isdecimal() and len(value) < 10 else 0
