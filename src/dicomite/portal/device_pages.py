"""The device login, ``{public_url}/devicelogin`` (RFC 8628 §3.3): the person types the code a
device shows, signs in with the portal's sign-in if they have no session yet, confirms the
application, consents if it asks for more than they granted, and the device's next poll of the
token endpoint gets its tokens.

The protocol lives in ``identity.device_codes``. The code form may come before any session, so
its CSRF token is a double-submit cookie (``form_cookies``); the decision and consent forms
need the session, and the portal checks their synchronizer token. Wrong codes are counted per
client address (``identity.throttle``): the tenth within 15 minutes locks the address out of
code entry for a minute, each further one twice as long (at most 15 minutes), whichever
session or account it uses.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dicomite.identity import device_codes
from dicomite.identity.delegation import accept, to_consent
from dicomite.identity.device_codes import DEVICE_LOGIN, Refused, normalized
from dicomite.identity.directory import find_application_by_app_id
from dicomite.identity.errors import TokenError
from dicomite.identity.principals import service_principal_for_app
from dicomite.identity.scopes import parse_scope
from dicomite.portal.authorize_pages import consent_page, token_error_page
from dicomite.portal.form_cookies import FormCookie
from dicomite.portal.web import PREFIX, Page, Portal
from dicomite.store.tables import DeviceCode, User

DEVICE_LOGIN_PATH = re.compile(r"^/devicelogin(\?|$)")
DECIDE = f"{DEVICE_LOGIN}/decide"
CODE_FORM = FormCookie("dicomite-device-csrf", DEVICE_LOGIN)
TITLE = "Sign in on your device"


def routes(portal: Portal) -> list[Route]:
    return [
        portal.route(DEVICE_LOGIN, code_form, public=True),
        portal.route(DEVICE_LOGIN, enter_code, methods=["POST"], public=True),
        portal.route(DECIDE, decide, methods=["POST"]),
    ]


def code_form(page: Page) -> Response:
    """The code form; back from the sign-in (``?code=``), the confirmation."""
    code = page.query.get("code", "")
    if code and page.signed_in is not None:
        return _confirm(page, code)
    return _form(page, code)


def enter_code(page: Page) -> Response:
    code = page.field("code")
    if not CODE_FORM.matches(page):
        return _form(page, code, Refused("The form expired. Try again.", 403))
    if page.signed_in is not None:
        return _confirm(page, code)
    with page.write() as session:
        found = _look_up(page, session, code)
    if isinstance(found, Refused):
        return _form(page, code, found)
    back = f"{DEVICE_LOGIN}?{urlencode({'code': normalized(code)})}"
    return RedirectResponse(f"{PREFIX}/signin?{urlencode({'next': back})}", status_code=303)


def decide(page: Page) -> Response:
    """Cancel, Continue (on the confirmation) or Accept (on the consent page)."""
    code = page.field("code")
    with page.write() as session:
        found = _look_up(page, session, code)
        if isinstance(found, Refused):
            return _form(page, code, found)
        return _decided(page, session, found, page.field("decision"))


def _decided(page: Page, session: Session, row: DeviceCode, decision: str) -> Response:
    app = find_application_by_app_id(session, page.tenant_id, row.client_app_id)
    if app is None or decision not in ("continue", "accept"):
        device_codes.deny(row)
        return _done(page, app.display_name if app else row.client_app_id, approved=False)
    user = session.get_one(User, page.user.id)
    scope = parse_scope(row.scope)
    try:
        if decision == "accept":
            accept(session, page.tenant_id, app, scope, user, page.now)
        else:
            client = service_principal_for_app(session, page.tenant_id, app.app_id)
            missing = to_consent(session, page.tenant_id, app, client, scope, user)
            if missing is not None:
                fields = [("code", normalized(page.field("code")))]
                return consent_page(page, app.display_name, missing, fields, DECIDE)
    except TokenError as error:  # consent only an administrator may give: the device is told
        device_codes.deny(row)
        return token_error_page(page, error)
    device_codes.approve(row, user.id, _authenticated_at(page))
    return _done(page, app.display_name, approved=True)


def _confirm(page: Page, code: str) -> Response:
    with page.write() as session:
        found = _look_up(page, session, code)
        if isinstance(found, Refused):
            return _form(page, code, found)
        app = find_application_by_app_id(session, page.tenant_id, found.client_app_id)
        name = app.display_name if app else found.client_app_id
    return page.render("device_confirm.html", title=TITLE, app_name=name, code=normalized(code))


def _look_up(page: Page, session: Session, code: str) -> DeviceCode | Refused:
    return device_codes.look_up(session, page.tenant_id, code, page.client_address, page.now)


def _form(page: Page, code: str, refused: Refused | None = None) -> Response:
    token = CODE_FORM.new_token()
    response = page.render(
        "device_code.html",
        refused.status if refused else 200,
        title=TITLE,
        form_token=token,
        code=code[: device_codes.MAX_TYPED],
        error=refused.message if refused else "",
    )
    if refused is not None and refused.retry_after_seconds:
        response.headers["retry-after"] = str(refused.retry_after_seconds)
    return CODE_FORM.attach(page, response, token)


def _done(page: Page, app_name: str, *, approved: bool) -> Response:
    return page.render("device_done.html", title=TITLE, app_name=app_name, approved=approved)


def _authenticated_at(page: Page) -> datetime:
    signed_in = page.signed_in
    if signed_in is None:
        raise RuntimeError("the decision forms are for signed-in people only")
    return signed_in.authenticated_at
