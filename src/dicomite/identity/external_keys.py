"""Signing keys of other OpenID providers (a CI system, a Kubernetes cluster, another Entra
ID tenant), fetched from their discovery document and JWKS, guardedly.

Fetching runs on a token request, for an issuer a request names, so it is bounded on every
side (issue: "fetching is guarded"):

- only issuers the caller allows are fetched (for federation: issuers named in some federated
  credential; for trusted authorities: the configured ones), never a URL taken from a token;
- HTTPS only; redirects followed only to the same host, at most ``MAX_REDIRECTS``;
- ``TIMEOUT_SECONDS`` per request, ``MAX_DOCUMENT_BYTES`` per document (read in chunks; a
  larger body is refused without being kept);
- keys cached per issuer; a ``kid`` not in the cache refetches the JWKS at most once per
  ``MIN_REFRESH_SECONDS`` (forged ``kid`` values cannot turn us into a request amplifier),
  and every ``MAX_AGE_SECONDS`` the cache is refreshed anyway;
- a private CA bundle may be given for issuers inside an organisation, and an issuer whose
  discovery is not reachable (an on-premises cluster) may be given a static JWKS file, or a
  JWKS URL to fetch instead of its discovery document.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import jwt
from jwt.algorithms import get_default_algorithms

TIMEOUT_SECONDS = 5.0
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_REDIRECTS = 3
MIN_REFRESH_SECONDS = 30.0
MAX_AGE_SECONDS = 3600.0
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384")


class FetchFailed(Exception):
    """An issuer's document could not be fetched or read; ``str()`` says why (safe to show)."""


@dataclass
class _Cached:
    fetched_at: float
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> public key object
    failure: str | None = None  # why the last fetch failed: answered until the next may run


def https_only(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname) and not parts.username


class ExternalKeys:
    """Public keys of allowed issuers by ``kid``; thread-safe."""

    def __init__(
        self,
        *,
        ca_bundle: Path | None = None,
        static_jwks: Mapping[str, Path | str] | None = None,
        min_refresh: float = MIN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else True
        )
        self._static = dict(static_jwks or {})
        self._min_refresh = min_refresh
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def public_key(self, issuer: str, kid: str | None) -> Any | None:
        """The key ``kid`` of ``issuer`` (the caller has checked the issuer is allowed), or
        None when the issuer does not publish it; ``FetchFailed`` when it cannot be asked."""
        cached = self._cache.get(issuer)
        if cached is None or self._due(cached, wanted=kid not in cached.keys):
            cached = self._refreshed(issuer)
        if cached.failure is not None:
            raise FetchFailed(cached.failure)
        return _single(cached.keys, kid)

    def _due(self, cached: _Cached, *, wanted: bool) -> bool:
        """Whether to fetch again: the cache is old, or a key is missing and the last fetch
        is older than the refresh interval."""
        age = self._clock() - cached.fetched_at
        return age >= MAX_AGE_SECONDS or (wanted and age >= self._min_refresh)

    def _refreshed(self, issuer: str) -> _Cached:
        with self._lock:  # one fetch at a time; those that waited find it done
            cached = self._cache.get(issuer)
            if cached is not None and self._clock() - cached.fetched_at < self._min_refresh:
                return cached
            try:
                cached = _Cached(self._clock(), self._fetch_keys(issuer))
            except (FetchFailed, httpx.HTTPError, OSError) as error:
                cached = _Cached(self._clock(), failure=_reason(error))
            self._cache[issuer] = cached
            return cached

    def _fetch_keys(self, issuer: str) -> dict[str, Any]:
        static = self._static.get(issuer)
        if isinstance(static, Path):
            return _keys_of(_parse(static.read_bytes(), f"the JWKS file {static}"))
        if static is not None:  # a configured JWKS URL instead of the discovery document
            return _keys_of(self._get_json(static))
        if not https_only(issuer):
            raise FetchFailed(f"the issuer '{issuer[:200]}' is not an https URL")
        discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        discovery = self._get_json(discovery_url)
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not https_only(jwks_uri):
            raise FetchFailed(f"the discovery document of '{issuer[:200]}' has no https jwks_uri")
        return _keys_of(self._get_json(jwks_uri))

    def _get_json(self, url: str) -> dict[str, Any]:
        with httpx.Client(
            verify=self._verify, timeout=TIMEOUT_SECONDS, follow_redirects=False
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                with client.stream("GET", url, headers={"Accept": "application/json"}) as reply:
                    if reply.is_redirect:
                        url = _same_host_redirect(url, reply.headers.get("location", ""))
                        continue
                    if reply.status_code != 200:
                        raise FetchFailed(f"{url[:200]} answered {reply.status_code}")
                    return _parse(_bounded_body(reply), url)
        raise FetchFailed(f"{url[:200]} redirected more than {MAX_REDIRECTS} times")


def _reason(error: Exception) -> str:
    if isinstance(error, FetchFailed):
        return str(error)
    return f"the issuer could not be reached ({type(error).__name__})"


def _same_host_redirect(url: str, location: str) -> str:
    target = urljoin(url, location)
    if urlsplit(target).netloc != urlsplit(url).netloc or not https_only(target):
        raise FetchFailed(f"{url[:200]} redirected to another host or scheme")
    return target


def _bounded_body(reply: httpx.Response) -> bytes:
    body = bytearray()
    for chunk in reply.iter_bytes():
        body += chunk
        if len(body) > MAX_DOCUMENT_BYTES:
            raise FetchFailed(f"{str(reply.url)[:200]} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return bytes(body)


def _parse(body: bytes, source: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise FetchFailed(f"{source[:200]} is not JSON") from None
    if not isinstance(document, dict):
        raise FetchFailed(f"{source[:200]} is not a JSON object")
    return document


def _keys_of(jwks: dict[str, Any]) -> dict[str, Any]:
    """The usable signing keys of a JWKS by ``kid`` (others, and malformed ones, skipped)."""
    found: dict[str, Any] = {}
    keys = jwks.get("keys")
    for jwk in keys if isinstance(keys, list) else []:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        algorithm = get_default_algorithms().get(_algorithm_family(jwk))
        if algorithm is None:
            continue
        try:
            key = algorithm.from_jwk(jwk)
        except (jwt.InvalidKeyError, ValueError, KeyError, TypeError):
            continue
        found[str(jwk.get("kid", ""))] = key
    return found


def _algorithm_family(jwk: dict[str, Any]) -> str:
    return {"RSA": "RS256", "EC": "ES256"}.get(str(jwk.get("kty")), "")


def _single(keys: dict[str, Any], kid: str | None) -> Any | None:
    """The key named ``kid``; without a ``kid``, the issuer's only key (RFC 7515 §4.1.4)."""
    if kid is None:
        return next(iter(keys.values())) if len(keys) == 1 else None
    return keys.get(kid)
