"""Which web origins may call the DICOM service and the management API from a browser
(``--cors-origin``), and the CORS policy they get (the Fetch standard's CORS protocol); and the
headers of the identity endpoints' own CORS, as Entra ID answers single-page applications.

Free of any web framework: ``dicomite.app`` hands the policy to Starlette's CORS middleware.
Browsers send ``Origin`` as ``scheme://host[:port]``, lowercase and without a default port
(RFC 6454 §6.1), and the middleware compares strings; so each configured origin is checked and
written the same way here, and a mistyped one stops the server at start instead of never
matching.

Identity endpoints: discovery and key documents are public, for any origin (``*``). The token
endpoint answers only the origins of the tenant's SPA redirect URIs (``origin_of``); a
preflight gets the request headers it asks for, as koa-cors (node oidc-provider's) answers,
since tokens travel in the body and never in cookies: credentials mode stays off.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

ANY_ORIGIN = "*"
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ORIGINS = 100

# What a DICOMweb or Graph client sends and reads across origins. Bearer tokens travel in the
# Authorization header, never in cookies, so credentials mode stays off (and "*" is allowed).
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
REQUEST_HEADERS = ("Authorization", "Accept", "Content-Type", "If-None-Match")
EXPOSED_HEADERS = ("Location", "ETag", "Content-Type")
PREFLIGHT_MAX_AGE_SECONDS = 3600  # browsers cap it lower (Chromium: 2 hours, Firefox: 1 day)


ANY_ORIGIN_HEADERS = {"Access-Control-Allow-Origin": ANY_ORIGIN}
TOKEN_METHODS = ("POST",)
MAX_REQUESTED_HEADERS_CHARS = 1024


class InvalidOrigin(ValueError):
    """A ``--cors-origin`` that is neither ``*`` nor ``scheme://host[:port]``."""


@dataclass(frozen=True)
class CorsPolicy:
    origins: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.origins)


@functools.cache
def cors_policy(setting: str) -> CorsPolicy:
    """``"https://viewer.example.org, http://localhost:3000"`` as a policy (once per value)."""
    entries = [entry.strip() for entry in setting.split(",") if entry.strip()]
    if len(entries) > MAX_ORIGINS:
        raise InvalidOrigin(f"At most {MAX_ORIGINS} CORS origins can be given.")
    if ANY_ORIGIN in entries:
        return CorsPolicy((ANY_ORIGIN,))
    return CorsPolicy(tuple(dict.fromkeys(serialized_origin(entry) for entry in entries)))


def serialized_origin(entry: str) -> str:
    """``entry`` as a browser serializes its origin, or InvalidOrigin."""
    try:
        parts = urlsplit(entry)
        parts.port  # noqa: B018 - a port that is not a number makes it no origin
    except ValueError as error:
        raise InvalidOrigin(f"'{entry[:100]}' is not an origin: {error}.") from None
    extra = parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc
    origin = origin_of(entry)
    if origin is None or extra:
        raise InvalidOrigin(
            f"'{entry[:100]}' is not an origin: give http:// or https://, a host and an "
            "optional port, without a path (e.g. https://viewer.example.org), or *."
        )
    return origin


def origin_of(url: str) -> str | None:
    """The origin a browser sends for a page at ``url`` (RFC 6454 §6.1), or None when it has
    none a browser would send (not http or https, no host, a port that is not one)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # an IPv6 literal keeps its brackets in an origin
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def allowed_origin_headers(origin: str) -> dict[str, str]:
    """A response readable by that one origin; ``Vary`` keeps caches from serving it to
    another."""
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight_headers(origin: str, requested_headers: str | None) -> dict[str, str]:
    """The answer to a token endpoint preflight (Fetch §3.2.2) from an allowed origin."""
    headers = {
        **allowed_origin_headers(origin),
        "Access-Control-Allow-Methods": ", ".join(TOKEN_METHODS),
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
    }
    if requested_headers and len(requested_headers) <= MAX_REQUESTED_HEADERS_CHARS:
        headers["Access-Control-Allow-Headers"] = requested_headers
    return headers
