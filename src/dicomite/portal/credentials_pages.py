"""Certificates & secrets: client secrets (value shown once), certificate upload, and the list
of federated credentials (added and deleted by ``federated_pages``).

A new secret's value is shown on exactly one page: the POST that creates it redirects (303) to
the blade, which shows the value handed over by ``shown_once`` (sent with ``Cache-Control:
no-store``); reloading it, or any later page, shows the stored hint only and creates nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.datastructures import UploadFile
from starlette.responses import Response
from starlette.routing import Route

from dicomite.identity import credentials, federated_credentials
from dicomite.identity.problems import Conflict, InvalidInput
from dicomite.portal import shown_once
from dicomite.portal.apps_pages import changeable_app, manageable_app
from dicomite.portal.web import Page, Portal

TABS = ("certificates", "secrets", "federated")
DEFAULT_TAB = "secrets"
EXPIRING_SOON = timedelta(days=30)
# The Azure portal's choices, in its order; the value is a number of days.
EXPIRY_CHOICES = {
    "180": "Recommended: 180 days (6 months)",
    "90": "90 days (3 months)",
    "365": "365 days (12 months)",
    "545": "545 days (18 months)",
    "730": "730 days (24 months)",
    "custom": "Custom",
}
DEFAULT_EXPIRY = "180"
CERTIFICATE_SUFFIXES = (".cer", ".pem", ".crt")
MAX_CERTIFICATE_BYTES = 64 * 1024


def routes(portal: Portal) -> list[Route]:
    base = "/apps/{app}/credentials"
    return [
        portal.route(base, credentials_page),
        portal.route(f"{base}/secrets/new", secret_form),
        portal.route(f"{base}/secrets/new", add_secret, methods=["POST"]),
        portal.route(f"{base}/secrets/{{key}}/delete", delete_secret, methods=["POST"]),
        portal.route(f"{base}/certificates/new", certificate_form),
        portal.route(f"{base}/certificates/new", upload_certificate, methods=["POST"]),
        portal.route(f"{base}/certificates/{{key}}/delete", delete_certificate, methods=["POST"]),
    ]


def credentials_page(page: Page) -> Response:
    with page.read() as session:
        app = manageable_app(page, session)
        secrets = credentials.list_passwords(session, app)
        certificates = credentials.list_certificates(session, app)
        federated = federated_credentials.federated_credentials_of(session, app)
    new = shown_once.take(page, app.id)
    tab = DEFAULT_TAB if new else page.query.get("tab", DEFAULT_TAB)
    response = page.render(
        "app_credentials.html",
        title=f"{app.display_name} | Certificates & secrets",
        app=app,
        tab=tab if tab in TABS else DEFAULT_TAB,
        secrets=secrets,
        certificates=certificates,
        federated=federated,
        new_secret=new,
        now=page.now,
        soon=page.now + EXPIRING_SOON,
    )
    return shown_once.forget(page, response)


def _back_to(page: Page, tab: str, notice: str) -> Response:
    return page.redirect(f"/apps/{page.params['app']}/credentials", notice=notice, tab=tab)


# --- client secrets ---------------------------------------------------------------------------


def secret_form(page: Page, error: str = "", status: int = 200) -> Response:
    with page.read() as session:
        app = changeable_app(page, session)
    today = page.now.date()
    return page.render(
        "app_credentials_secret_new.html",
        status,
        title="Add a client secret",
        app=app,
        error=error,
        choices=EXPIRY_CHOICES,
        description=page.field("description"),
        expires=page.field("expires") or DEFAULT_EXPIRY,
        start=page.field("start") or today.isoformat(),
        end=page.field("end") or (today + timedelta(days=int(DEFAULT_EXPIRY))).isoformat(),
    )


def _date(page: Page, name: str, label: str) -> datetime:
    text = page.field(name)
    if not text:
        raise InvalidInput("Choose a start date and an end date for a custom expiry.")
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"The {label} date must be a date (YYYY-MM-DD).") from None


def _validity(page: Page) -> tuple[datetime | None, datetime]:
    """Start (None: now) and end of the new secret; ``add_password`` enforces the 24 months."""
    choice = page.field("expires") or DEFAULT_EXPIRY
    if choice not in EXPIRY_CHOICES:
        raise InvalidInput("Choose when the client secret expires.")
    if choice != "custom":
        return None, page.now + timedelta(days=int(choice))
    start, end = _date(page, "start", "start"), _date(page, "end", "end")
    if end <= start:
        raise InvalidInput("The end date must be later than the start date.")
    return start, end


def add_secret(page: Page) -> Response:
    try:
        start, end = _validity(page)
        with page.write() as session:
            new = credentials.add_password(
                session,
                changeable_app(page, session),
                page.portal.services.context.protection,
                page.now,
                display_name=page.field("description") or None,
                start=start,
                end=end,
            )
    except InvalidInput as problem:
        return secret_form(page, problem.message, 400)
    shown = shown_once.ShownSecret(new.credential.key_id, new.secret_text)
    app_id = new.credential.application_id
    return shown_once.hand_over(page, _back_to(page, "secrets", ""), app_id, shown)


def delete_secret(page: Page) -> Response:
    with page.write() as session:
        credentials.remove_password(session, changeable_app(page, session), page.params["key"])
    return _back_to(page, "secrets", "secret-deleted")


# --- certificates -----------------------------------------------------------------------------


def certificate_form(page: Page, error: str = "", status: int = 200) -> Response:
    with page.read() as session:
        app = changeable_app(page, session)
    return page.render(
        "app_credentials_certificate_new.html",
        status,
        title="Upload certificate",
        app=app,
        error=error,
        description=page.field("description"),
        accept=",".join(CERTIFICATE_SUFFIXES),
    )


def _uploaded_certificate(page: Page) -> bytes:
    upload = page.form.get("certificate") if page.form is not None else None
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("Select a certificate file (.cer, .pem or .crt) to upload.")
    if not upload.filename.lower().endswith(CERTIFICATE_SUFFIXES):
        raise InvalidInput("Only .cer, .pem and .crt certificate files can be uploaded.")
    data = upload.file.read(MAX_CERTIFICATE_BYTES + 1)
    if not data or len(data) > MAX_CERTIFICATE_BYTES:
        raise InvalidInput("The file is empty or too large to be a certificate.")
    return data


def upload_certificate(page: Page) -> Response:
    try:
        data = _uploaded_certificate(page)
        with page.write() as session:
            credentials.add_certificate(
                session,
                changeable_app(page, session),
                data,
                display_name=page.field("description") or None,
            )
    except (InvalidInput, Conflict) as problem:
        return certificate_form(page, problem.message, 400)
    return _back_to(page, "certificates", "certificate-added")


def delete_certificate(page: Page) -> Response:
    with page.write() as session:
        credentials.remove_certificate(session, changeable_app(page, session), page.params["key"])
    return _back_to(page, "certificates", "certificate-deleted")
