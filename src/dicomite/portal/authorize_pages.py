"""The authorization endpoint's pages: ``/{tenant}/oauth2/v2.0/authorize`` (and v1's
``/oauth2/authorize``), the consent page and sign-out (``/oauth2/v2.0/logout``).

The protocol lives in ``identity.authorize``; this adapter reads parameters, sends the person
to the portal's sign-in (same people, passwords, throttling and session), renders the consent
page, and delivers answers by redirect (``query``, ``fragment``) or by an auto-submitted form
(``form_post``). Pages that may lead to a client's redirect URI allow that one origin as a form
target in their CSP: browsers apply ``form-action`` to the redirects a form submission follows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dicomite.identity import authorize as protocol
from dicomite.identity import logout
from dicomite.identity.delegation import Delegation, accept
from dicomite.identity.errors import DuplicateParameter, InvalidTenant, MalformedBody, TokenError
from dicomite.identity.tokens import issuer
from dicomite.identity.user_errors import AccessDenied
from dicomite.ids import unique_uuid
from dicomite.portal import sessions
from dicomite.portal.web import PREFIX, SECURITY_HEADERS, Page, Portal
from dicomite.store.tables import Application, User

AUTHORIZE_PATH = re.compile(r"^/[A-Za-z0-9._-]{1,256}/oauth2/(v2\.0/)?authorize\?")
MAX_VALUE_CHARS = 4096
_CSP = "content-security-policy"
# Form fields of the consent page that are not authorization parameters.
_CONSENT_FIELDS = frozenset({"csrf_token", "decision"})


def routes(portal: Portal) -> list[Route]:
    both = ["GET", "POST"]
    return [
        portal.route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=both, public=True),
        portal.route("/{tenant}/oauth2/authorize", authorize, methods=both, public=True),
        portal.route("/{tenant}/oauth2/v2.0/consent", consent, methods=["POST"]),
        portal.route("/{tenant}/oauth2/v2.0/logout", sign_out, methods=both, public=True),
        portal.route("/{tenant}/oauth2/logout", sign_out, methods=both, public=True),
    ]


def authorize(page: Page) -> Response:
    try:
        params = _params(page)
    except TokenError as error:
        return token_error_page(page, error)
    return _answered(page, params, _proceed)


Step = Callable[[Page, Session, protocol.Target, Application, Mapping[str, str]], Response]


def _answered(page: Page, params: Mapping[str, str], step: Step) -> Response:
    """``step``'s response; an error before the redirect URI is trusted on a page, after it
    at the redirect URI."""
    with page.write() as session:
        try:
            _check_tenant(page)
            target, app = protocol.target_of(session, page.tenant_id, params)
        except TokenError as error:
            return token_error_page(page, error)
        try:
            return step(page, session, target, app, params)
        except TokenError as error:
            return _deliver(page, protocol.error_answer(target, error, unique_uuid(), page.now))


def _proceed(
    page: Page,
    session: Session,
    target: protocol.Target,
    app: Application,
    params: Mapping[str, str],
) -> Response:
    request = protocol.read_request(target, app, params)
    signed_in = page.signed_in
    user = session.get(User, signed_in.user.id) if signed_in else None
    authenticated_at = signed_in.authenticated_at if signed_in else None
    decision = protocol.decide(session, page.tenant_id, request, app, user, authenticated_at)
    if isinstance(decision, protocol.SignInNeeded):
        return _to_sign_in(page, params, request, decision.fresh)
    if user is None or authenticated_at is None:
        raise RuntimeError("decide approves only a signed-in person")
    if isinstance(decision, protocol.ConsentNeeded):
        return _consent_page(page, target, params, decision)
    people = page.portal.services.tokens.people
    answer = protocol.approve(session, people, request, user, authenticated_at, page.now)
    return _deliver(page, answer)


def consent(page: Page) -> Response:
    """Accept or Cancel on the consent page (a signed-in person; the CSRF token is checked).
    The other fields are the authorization request, read as the endpoint reads it."""
    try:
        params = _params(page, besides=_CONSENT_FIELDS)
    except TokenError as error:
        return token_error_page(page, error)
    return _answered(page, params, _decided)


def _decided(
    page: Page,
    session: Session,
    target: protocol.Target,
    app: Application,
    params: Mapping[str, str],
) -> Response:
    request = protocol.read_request(target, app, params)
    if page.field("decision") != "accept":
        raise AccessDenied()
    user = session.get_one(User, page.user.id)
    accept(session, page.tenant_id, app, request.scope, user, page.now)
    people = page.portal.services.tokens.people
    authenticated_at = page.signed_in.authenticated_at if page.signed_in else page.now
    return _deliver(
        page, protocol.approve(session, people, request, user, authenticated_at, page.now)
    )


def sign_out(page: Page) -> Response:
    """OIDC RP-initiated logout: end the portal session, then go back to the application only
    where ``identity.logout`` allows it; otherwise the signed-out page."""
    params = dict(page.query) if page.request.method == "GET" else _form_params(page)
    cookie = page.request.cookies.get(page.portal.cookie_name, "")
    with page.write() as session:
        if cookie:
            sessions.end(session, cookie)
        back = logout.return_to(session, page.tenant_id, params, _hints(page), page.now)
    if back is not None:
        response: Response = RedirectResponse(back, status_code=302)
    else:
        response = page.render("signed_out.html", title="Signed out")
    response.delete_cookie(
        page.portal.cookie_name, path="/", secure=page.portal.secure, httponly=True
    )
    return response


def _hints(page: Page) -> logout.IdTokenHints:
    services = page.portal.services
    return logout.IdTokenHints(
        services.published_keys, issuer(services.public_url, page.tenant_id, 2)
    )


# Answers ------------------------------------------------------------------------------------


def _deliver(page: Page, answer: protocol.Answer) -> Response:
    if answer.target.response_mode == "form_post":
        response: Response = page.render(
            "form_post.html",
            title="Signing you in",
            action=answer.target.redirect_uri,
            fields=sorted(answer.params.items()),
        )
    else:
        response = RedirectResponse(answer.location(), status_code=302)
    allow_redirect_to(response, origin_of(answer.target.redirect_uri))
    response.headers["cache-control"] = "no-store"
    return response


def _to_sign_in(
    page: Page, params: Mapping[str, str], request: protocol.AuthorizeRequest, fresh: bool
) -> Response:
    again = dict(params)
    if fresh:
        again.pop("prompt", None)
        again[protocol.SIGNED_IN_AFTER] = str(int(page.now.timestamp()))
    query = {"next": f"{page.request.url.path}?{urlencode(again)}"}
    if request.login_hint:
        query["login_hint"] = request.login_hint[:256]
    if fresh:
        query["fresh"] = "1"
    return RedirectResponse(f"{PREFIX}/signin?{urlencode(query)}", status_code=302)


def _consent_page(
    page: Page,
    target: protocol.Target,
    params: Mapping[str, str],
    decision: protocol.ConsentNeeded,
) -> Response:
    action = f"/{page.params['tenant']}/oauth2/v2.0/consent"
    fields = sorted((k, v) for k, v in params.items() if k not in _CONSENT_FIELDS)
    response = consent_page(page, target.app_name, decision.delegation, fields, action)
    allow_redirect_to(response, origin_of(target.redirect_uri))
    return response


def consent_page(
    page: Page, app_name: str, found: Delegation, fields: list[tuple[str, str]], action: str
) -> Response:
    """The permissions ``found`` misses, to Accept or Cancel; the form posts ``fields``."""
    return page.render(
        "consent.html",
        title="Permissions requested",
        app_name=app_name,
        resource_name=found.resource.display_name,
        permissions=[found.descriptions[p] for p in found.asked],
        fields=fields,
        action=action,
    )


def token_error_page(page: Page, error: TokenError) -> Response:
    """An error the client cannot be told of (no trusted redirect URI): shown to the person."""
    message = f"AADSTS{error.code}: {error.message}"
    return page.portal.error_page(page.request, 400, message, page)


# Helpers ------------------------------------------------------------------------------------


def origin_of(uri: str) -> str | None:
    """The CSP source of a redirect URI: its origin, or its scheme for an app's own scheme."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return f"{parts.scheme}:" if parts.scheme else None


def allow_redirect_to(response: Response, origin: str | None) -> None:
    if origin is None or any(c in origin for c in " ;,'\"\r\n"):
        return
    policy = SECURITY_HEADERS[_CSP].replace("form-action 'self'", f"form-action 'self' {origin}")
    response.headers[_CSP] = policy


def redirect_origin(page: Page, next_url: str) -> str | None:
    """For a sign-in on the way back to the authorization endpoint: the origin of the client's
    redirect URI, once it is known to be registered."""
    if not AUTHORIZE_PATH.match(next_url):
        return None
    params = dict(parse_qsl(urlsplit(next_url).query))
    try:
        with page.read() as session:
            target, _ = protocol.target_of(session, page.tenant_id, params)
    except TokenError:
        return None
    return origin_of(target.redirect_uri)


def _check_tenant(page: Page) -> None:
    reference = page.params["tenant"]
    tenant = page.portal.services.tokens.view.tenant(reference)
    if tenant is None or tenant.id != page.tenant_id:
        raise InvalidTenant(tenant=reference[:100])


def _params(page: Page, besides: frozenset[str] = frozenset()) -> dict[str, str]:
    """The request's parameters (the query of a GET, the form of a POST), each once, except
    the names in ``besides``."""
    if page.request.method == "GET":
        items = page.request.query_params.multi_items()
    else:
        items = [
            (k, v) for k, v in (page.form.multi_items() if page.form else []) if isinstance(v, str)
        ]
    params: dict[str, str] = {}
    for name, value in items:
        if name in besides:
            continue
        if name in params:
            raise DuplicateParameter(parameter=name[:100])
        if len(value) > MAX_VALUE_CHARS:
            raise MalformedBody(
                detail=f"'{name[:100]}' is longer than {MAX_VALUE_CHARS} characters."
            )
        params[name] = value
    return params


def _form_params(page: Page) -> dict[str, str]:
    form = page.form
    return {k: v for k, v in (form.items() if form else []) if isinstance(v, str)}
