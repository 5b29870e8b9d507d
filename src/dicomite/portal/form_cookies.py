"""Forms shown before there is a session (sign-in, the device login's code): their CSRF token
is a double-submit cookie (OWASP CSRF cheat sheet, login CSRF), since there is no session to
hold a synchronizer token yet.

Over HTTPS the cookie is ``__Host-`` prefixed, which the browser accepts only when Secure,
host-only and ``Path=/``, so no sibling host can plant one; over plain HTTP (behind a proxy
ending TLS, or in tests) it is limited to the form's own path.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starlette.responses import Response

from dicomite.portal import sessions
from dicomite.portal.web import CSRF_FIELD, Page


@dataclass(frozen=True)
class FormCookie:
    name: str
    path: str  # where the form posts to: the cookie's path over plain HTTP

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(24)

    def attach(self, page: Page, response: Response, token: str) -> Response:
        """Set the cookie the form with ``token`` will be checked against."""
        response.set_cookie(
            self._name(page),
            token,
            httponly=True,
            secure=page.portal.secure,
            samesite="strict",
            path=self._path(page),
        )
        return response

    def matches(self, page: Page) -> bool:
        """Whether the posted form's token is the one in the cookie."""
        expected = page.request.cookies.get(self._name(page), "")
        return bool(expected) and sessions.csrf_matches(expected, page.field(CSRF_FIELD))

    def forget(self, page: Page, response: Response) -> Response:
        response.delete_cookie(self._name(page), path=self._path(page), secure=page.portal.secure)
        return response

    def _name(self, page: Page) -> str:
        return ("__Host-" if page.portal.secure else "") + self.name

    def _path(self, page: Page) -> str:
        return "/" if page.portal.secure else self.path
