"""The portal's one adapter between Starlette and the domain.

Handlers are plain synchronous functions ``handler(page) -> Response`` run in the blocking pool
(``dicomite.blocking``);
this module resolves the session cookie, checks the CSRF token of every POST, turns the domain's
``DirectoryProblem`` types into error pages, and adds the security headers every page carries.

Exception → page: ``NotFound`` 404, ``NotAllowed`` 403, ``InvalidInput``/``Conflict`` 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from anyio.lowlevel import EventLoopToken, current_token
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Connection
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Message

from dicomite.blocking import run_blocking
from dicomite.client_address import client_address, trusted_proxies
from dicomite.clock import utcnow
from dicomite.identity import policy
from dicomite.identity.problems import DirectoryProblem, NotAllowed, NotFound
from dicomite.portal import notices, sessions
from dicomite.portal.sessions import SignedIn
from dicomite.services import Services
from dicomite.store.tables import Tenant, User

PREFIX = "/portal"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Upload limits for portal forms (certificates are small; DICOM uploads use their own route).
MAX_FORM_FIELDS = 200
MAX_FORM_PART_BYTES = 1024 * 1024
MAX_FORM_BYTES = 2 * 1024 * 1024

# CSP: only our own scripts and styles, no inline script, nothing framed (clickjacking).
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

Handler = Callable[["Page"], Response]


def portal_url(path: str = "/", **query: str) -> str:
    url = PREFIX + path
    wanted = {k: v for k, v in query.items() if v}
    return f"{url}?{urlencode(wanted)}" if wanted else url


@dataclass
class Page:
    """What a handler sees of one request."""

    request: Request
    portal: Portal
    signed_in: SignedIn | None
    form: FormData | None
    loop: EventLoopToken | None = None  # the request's event loop, for ``anyio.from_thread``
    now: datetime = field(default_factory=utcnow)

    @property
    def user(self) -> User:
        if self.signed_in is None:
            raise RuntimeError("a public page has no signed-in user")
        return self.signed_in.user

    @property
    def params(self) -> Mapping[str, str]:
        return self.request.path_params

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    def fields(self, name: str) -> list[str]:
        values = self.form.getlist(name) if self.form is not None else []
        return [v for v in values if isinstance(v, str)]

    @property
    def tenant_id(self) -> str:
        return self.portal.services.context.tenant_id

    @property
    def client_address(self) -> str:
        """The socket peer, or X-Forwarded-For from a trusted proxy (``--forwarded-allow-ips``)."""
        peer = self.request.client.host if self.request.client else None
        forwarded = self.request.headers.getlist("x-forwarded-for")
        return client_address(peer, forwarded, self.portal.trusted_proxies)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.portal.services.context.store.read() as session:
            yield session

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A read transaction for Core statements on the DICOM index."""
        with self.portal.services.context.store.transaction() as connection:
            yield connection

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.portal.services.context.store.write() as session:
            yield session

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return self.portal.render(self, template, status, values)

    def redirect(self, path: str, notice: str = "", **query: str) -> RedirectResponse:
        if notice:
            query["notice"] = notice
        return RedirectResponse(portal_url(path, **query), status_code=303)


class Portal:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.secure = services.public_url.startswith("https://")
        # "__Host-" makes the browser refuse the cookie unless Secure, host-only and Path=/.
        self.cookie_name = "__Host-dicomite-session" if self.secure else "dicomite-session"
        self.trusted_proxies = trusted_proxies(services.context.settings.forwarded_allow_ips)
        self.templates = Environment(
            loader=PackageLoader("dicomite.portal", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(url=portal_url, public_url=services.public_url, policy=policy)
        with services.context.store.read() as session:
            tenant = session.get(Tenant, services.context.tenant_id)
            if tenant is None:  # prepare() creates it before any app is built
                raise RuntimeError(f"the tenant {services.context.tenant_id} is not in the store")
            self.tenant_name = tenant.display_name
            self.tenant_domain = tenant.domain

    def route(
        self,
        path: str,
        handler: Handler,
        *,
        methods: Sequence[str] = ("GET",),
        public: bool = False,
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            return self.secured(await respond(request))

        async def respond(request: Request) -> Response:
            form = None
            if request.method == "POST" and _is_form(request):
                try:
                    form = await _read_form(request)
                except MultiPartException as problem:
                    return self.error_page(request, 400, f"The form could not be read: {problem}")
                except FormTooLarge:
                    return self.error_page(request, 413, "The form is too large.")
            try:
                return await run_blocking(
                    self._serve, handler, request, form, public, current_token()
                )
            finally:
                if form is not None:
                    await form.close()

        return Route(path, endpoint, methods=list(methods), name=handler.__name__)

    def _serve(
        self,
        handler: Handler,
        request: Request,
        form: FormData | None,
        public: bool,
        loop: EventLoopToken,
    ) -> Response:
        signed_in = self.session_of(request)
        if not public:
            if signed_in is None:
                return self._to_sign_in(request)
            if request.method == "POST" and not self._csrf_ok(request, form, signed_in):
                return self.error_page(
                    request,
                    403,
                    "The form expired or did not come from this portal. "
                    "Reload the page and try again.",
                )
        page = Page(request, self, signed_in, form, loop)
        try:
            response = handler(page)
        except DirectoryProblem as problem:
            response = self.error_page(request, _status_of(problem), problem.message, page)
        return response

    def session_of(self, request: Request) -> SignedIn | None:
        cookie = request.cookies.get(self.cookie_name, "")
        if not cookie:
            return None
        now = utcnow()
        store = self.services.context.store
        with store.read() as session:
            found = sessions.find(session, cookie, now)
        if found is not None and found.stale:
            with store.write() as session:
                sessions.touch(session, cookie, now)
        return found

    @staticmethod
    def _csrf_ok(request: Request, form: FormData | None, signed_in: SignedIn) -> bool:
        given = form.get(CSRF_FIELD) if form is not None else None
        if not isinstance(given, str):
            given = request.headers.get(CSRF_HEADER)
        return sessions.csrf_matches(signed_in.csrf_token, given)

    def _to_sign_in(self, request: Request) -> Response:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        if request.method != "GET" or request.headers.get("hx-request"):
            return self.error_page(request, 401, "Your session has ended. Sign in again.")
        return RedirectResponse(f"{PREFIX}/signin?next={quote(target)}", status_code=303)

    def render(
        self, page: Page | None, template: str, status: int, values: dict[str, Any]
    ) -> HTMLResponse:
        signed_in = page.signed_in if page is not None else None
        notice = page.query.get("notice", "") if page is not None else ""
        context = {
            "me": signed_in.user if signed_in else None,
            "csrf_token": signed_in.csrf_token if signed_in else "",
            "tenant_name": self.tenant_name,
            "tenant_domain": self.tenant_domain,
            "tenant_id": self.services.context.tenant_id,
            "notice": notices.text(notice),
            "path": page.request.url.path if page is not None else "",
            **values,
        }
        body = self.templates.get_template(template).render(context)
        return HTMLResponse(body, status_code=status)

    def error_page(
        self, request: Request, status: int, message: str, page: Page | None = None
    ) -> HTMLResponse:
        page = page or Page(request, self, None, None)
        return self.render(page, "error.html", status, {"status": status, "message": message})

    @staticmethod
    def secured(response: Response) -> Response:
        """The headers every portal response carries; a handler's own (an image's
        Cache-Control) win."""
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


class FormTooLarge(Exception):
    """A form body over ``MAX_FORM_BYTES``: refused before it is held in memory."""


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith(FORM_TYPES)


async def _read_form(request: Request) -> FormData:
    """The form, read through a byte budget: Starlette keeps url-encoded fields in memory, and
    a chunked body announces no length."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLarge
    seen = 0
    receive = request.receive

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > MAX_FORM_BYTES:
            raise FormTooLarge
        return message

    limited = Request(request.scope, counted)
    return await limited.form(max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_PART_BYTES)


def _status_of(problem: DirectoryProblem) -> int:
    if isinstance(problem, NotFound):
        return 404
    if isinstance(problem, NotAllowed):
        return 403
    return 400
