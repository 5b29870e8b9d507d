"""Sign in and sign out.

Sign-in has no session yet, so its form is protected by a double-submit cookie (OWASP: login
CSRF); every later form uses the session's synchronizer token.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dicomite.identity.signin import SignInBusy, SignInFailed, SignInThrottled, authenticate
from dicomite.portal import sessions
from dicomite.portal.authorize_pages import AUTHORIZE_PATH, allow_redirect_to, redirect_origin
from dicomite.portal.device_pages import DEVICE_LOGIN_PATH
from dicomite.portal.form_cookies import FormCookie
from dicomite.portal.web import PREFIX, Page, Portal

SIGNIN_FORM = FormCookie("dicomite-signin-csrf", PREFIX)
HOME = f"{PREFIX}/"


def routes(portal: Portal) -> list[Route]:
    return [
        portal.route("/signin", sign_in_form, public=True),
        portal.route("/signin", sign_in, methods=["POST"], public=True),
        portal.route("/signout", sign_out, methods=["POST"]),
    ]


def safe_next(target: str) -> str:
    """Only paths inside the portal, or back to the authorization endpoint or the device
    login that sent the person here: never another origin (open redirect)."""
    if "\\" in target or target.startswith("//"):
        return HOME
    if target.startswith(PREFIX + "/") or AUTHORIZE_PATH.match(target):
        return target
    if DEVICE_LOGIN_PATH.match(target):
        return target
    return HOME


def sign_in_form(page: Page) -> Response:
    """The form; a signed-in person goes straight on, unless an application asked for a fresh
    sign-in (``fresh``, from ``prompt=login``)."""
    if page.signed_in is not None and not page.query.get("fresh"):
        return RedirectResponse(safe_next(page.query.get("next", "")), status_code=303)
    name = page.query.get("login_hint", "")[:256]
    return _form(page, "", page.query.get("next", ""), status=200, name=name)


def _form(page: Page, error: str, target: str, status: int, name: str = "") -> Response:
    token = SIGNIN_FORM.new_token()
    target = safe_next(target)
    response = page.render(
        "signin.html", status, signin_token=token, error=error, next=target, name=name
    )
    allow_redirect_to(response, redirect_origin(page, target))
    return SIGNIN_FORM.attach(page, response, token)


def sign_in(page: Page) -> Response:
    target = page.field("next")
    name = page.field("username")
    if not SIGNIN_FORM.matches(page):
        return _form(page, "The sign-in form expired. Try again.", target, 403, name)
    store = page.portal.services.context.store
    try:
        user = authenticate(
            store, page.tenant_id, name, page.field("password"), page.client_address, page.now
        )
    except (SignInThrottled, SignInBusy) as problem:
        status = 429 if isinstance(problem, SignInThrottled) else 503
        response = _form(page, str(problem), target, status, name)
        response.headers["retry-after"] = str(problem.retry_after_seconds)
        return response
    except SignInFailed as problem:
        return _form(page, str(problem), target, 401, name)
    with page.write() as session:
        sessions.sweep(session, page.now)
        cookie = sessions.start(session, user, page.now)
    return _signed_in(page, cookie, target)


def _signed_in(page: Page, cookie: str, target: str) -> Response:
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(
        page.portal.cookie_name,
        cookie,
        httponly=True,
        secure=page.portal.secure,
        samesite="lax",
        path="/",
    )
    return SIGNIN_FORM.forget(page, response)


def sign_out(page: Page) -> Response:
    cookie = page.request.cookies.get(page.portal.cookie_name, "")
    with page.write() as session:
        sessions.end(session, cookie)
    response = page.redirect("/signin", notice="signed-out")
    response.delete_cookie(
        page.portal.cookie_name, path="/", secure=page.portal.secure, httponly=True
    )
    return response
