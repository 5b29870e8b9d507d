"""A new client secret's value, carried across one POST → 303 → GET (post/redirect/get).

The POST that creates a secret cannot show it itself: reloading that page would send the form
again and create a second secret. So the POST seals the value (Fernet, under a key of its own
derived from the key-encryption key) into a short-lived HttpOnly cookie bound to the session and
the application, and redirects (RFC 9110 §15.4.4, 303 See Other). The page it redirects to opens
the cookie, shows the value and deletes the cookie: a reload of that page shows only the hint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from starlette.responses import Response

from dicomite.portal.web import Page

COOKIE = "dicomite-new-secret"
# Long enough for the browser to follow the redirect; the cookie and the seal both expire.
MAX_AGE_SECONDS = 120


@dataclass(frozen=True)
class ShownSecret:
    key_id: str
    value: str


def _cookie_name(page: Page) -> str:
    return ("__Host-" if page.portal.secure else "") + COOKIE


def _session_digest(page: Page) -> str:
    cookie = page.request.cookies.get(page.portal.cookie_name, "")
    return hashlib.sha256(cookie.encode()).hexdigest()


def hand_over(page: Page, response: Response, app_id: str, secret: ShownSecret) -> Response:
    """Attach the sealed value to the redirect ``response``."""
    payload = {
        "session": _session_digest(page),
        "app": app_id,
        "key_id": secret.key_id,
        "value": secret.value,
    }
    sealed = page.portal.services.context.protection.seal(json.dumps(payload).encode())
    response.set_cookie(
        _cookie_name(page),
        sealed.decode(),
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        secure=page.portal.secure,
        samesite="strict",
        path="/",
    )
    return response


def take(page: Page, app_id: str) -> ShownSecret | None:
    """The value handed over for this session and application, if any (still sealed, unexpired)."""
    sealed = page.request.cookies.get(_cookie_name(page), "")
    if not sealed:
        return None
    protection = page.portal.services.context.protection
    try:
        payload = json.loads(protection.unseal(sealed.encode(), MAX_AGE_SECONDS))
    except (InvalidToken, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("session") != _session_digest(page):
        return None
    if payload.get("app") != app_id:
        return None
    return ShownSecret(str(payload["key_id"]), str(payload["value"]))


def forget(page: Page, response: Response) -> Response:
    """Delete the cookie (whether or not it was shown), so no later page shows the value."""
    if page.request.cookies.get(_cookie_name(page)):
        name, secure = _cookie_name(page), page.portal.secure
        response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")
    return response
