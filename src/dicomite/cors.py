"""Which web origins may call the DICOM service and the management API from a browser
(``--cors-origin``), and the CORS policy they get (the Fetch standard's CORS protocol).

Free of any web framework: ``dicomite.app`` hands the policy to Starlette's CORS middleware.
Browsers send ``Origin`` as ``scheme://host[:port]``, lowercase and without a default port
(RFC 6454 §6.1), and the middleware compares strings; so each configured origin is checked and
written the same way here, and a mistyped one stops the server at start instead of never
matching.
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
        port = parts.port
    except ValueError as error:
        raise InvalidOrigin(f"'{entry[:100]}' is not an origin: {error}.") from None
    extra = parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or extra:
        raise InvalidOrigin(
            f"'{entry[:100]}' is not an origin: give http:// or https://, a host and an "
            "optional port, without a path (e.g. https://viewer.example.org), or *."
        )
    host = parts.hostname
    if ":" in host:  # an IPv6 literal keeps its brackets in an origin
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"
