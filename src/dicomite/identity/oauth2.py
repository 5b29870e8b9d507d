"""The token endpoint as plain functions: (request) -> (status, body, headers).

The client-credentials grant (RFC 6749 §4.4), as Entra ID offers it to service clients: client
authentication by secret (form or HTTP Basic, RFC 6749 §2.3.1) or by a ``private_key_jwt``
assertion (RFC 7523), a single ``{resource}/.default`` scope on the v2 endpoint or a
``resource`` on the v1 endpoint. And a person's grants, the authorization code and the refresh
token (``person_grants``), and the device code of the device authorization grant (RFC 8628,
``device_codes``, whose device authorization endpoint is ``authorize_device``): web clients
authenticate as above; SPA and public clients present no credential, and a SPA's redemption must
be cross-origin (an ``Origin`` header), as Entra ID's.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from dicomite.identity import errors, federation, user_errors
from dicomite.identity.assertions import (
    CLIENT_ASSERTION_TYPE,
    ReplayGuard,
    pick_certificate,
    read_header,
    verify_claims,
)
from dicomite.identity.codes import SPA
from dicomite.identity.credentials import secret_matches
from dicomite.identity.external_keys import ExternalKeys
from dicomite.identity.issuance import Client, IssuanceView, Resource
from dicomite.identity.keys import KeyRing
from dicomite.identity.person_grants import DEVICE_CODE_GRANT, PUBLIC_ACR, PersonTokens
from dicomite.identity.protection import KeyProtection
from dicomite.identity.signins import SignInEvent, SignInRecorder
from dicomite.identity.tokens import Grant, claims, sign
from dicomite.ids import unique_uuid

RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
FEDERATED = "federated"  # the sign-in log's credential type of a federated assertion
PERSON_GRANTS = frozenset({"authorization_code", "refresh_token", DEVICE_CODE_GRANT})
WEB = "web"
NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


@dataclass(frozen=True)
class TokenRequest:
    tenant: str
    version: int  # 1 for /oauth2/token, 2 for /oauth2/v2.0/token
    form: Mapping[str, str]
    authorization: str | None = None
    client_ip: str | None = None
    client_request_id: str | None = None  # msal and azure-identity send one per request
    origin: str | None = None  # a browser's Origin header: a SPA's cross-origin redemption


@dataclass(frozen=True)
class TokenResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Attempt:
    """What we learnt about a request so far, for the sign-in log."""

    tenant_id: str | None = None
    client: Client | None = None
    client_id: str | None = None
    resource: Resource | None = None
    resource_name: str | None = None
    credential_type: str | None = None
    credential_key_id: str | None = None


class TokenService:
    def __init__(
        self,
        *,
        public_url: str,
        view: IssuanceView,
        keys: KeyRing,
        protection: KeyProtection,
        replay: ReplayGuard,
        signins: SignInRecorder,
        lifetime: timedelta,
        people: PersonTokens,
        external_keys: ExternalKeys,
    ) -> None:
        self.public_url = public_url
        self.view = view
        self._keys = keys
        self._protection = protection
        self._replay = replay
        self._signins = signins
        self._lifetime = lifetime
        self.people = people
        self._external_keys = external_keys  # federated credentials' issuers

    def blocks(self, request: TokenRequest) -> bool:
        """Whether handling ``request`` may wait: it writes to the store when it carries a
        client assertion (the ``jti`` record of the replay check, RFC 7523 §3), and on
        PostgreSQL every read is a network round trip. Such requests are handled in the
        blocking pool (``dicomite.blocking``). The others, the secret clients' on SQLite, read
        in-memory caches and one indexed row, check an HMAC and sign; their sign-in log row
        is queued (``SignInRecorder``), so they are handled on the event loop, without a hop."""
        return (
            "client_assertion" in request.form
            or request.form.get("grant_type") in PERSON_GRANTS
            or not self.view.reads_in_process
        )

    def handle(self, request: TokenRequest, now: datetime) -> TokenResponse:
        attempt = _Attempt()
        correlation_id = _correlation_id(request.client_request_id)
        try:
            body = self._issue(request, attempt, now)
        except errors.TokenError as error:
            self._log(request, attempt, now, error, correlation_id)
            return _refusal(error, correlation_id, now)
        self._log(request, attempt, now, None, correlation_id)
        return TokenResponse(200, body, dict(NO_STORE))

    def authorize_device(self, request: TokenRequest, now: datetime) -> TokenResponse:
        """The device authorization endpoint (RFC 8628 §3.1-3.2): it writes to the store, so
        it is handled in the blocking pool."""
        correlation_id = _correlation_id(request.client_request_id)
        try:
            tenant_id = self._tenant_id(request.tenant)
            body = self.people.authorize_device(tenant_id, request.form, now)
        except errors.TokenError as error:
            return _refusal(error, correlation_id, now)
        return TokenResponse(200, body, dict(NO_STORE))

    def _tenant_id(self, reference: str) -> str:
        tenant = self.view.tenant(reference)
        if tenant is None:
            raise errors.InvalidTenant(tenant=reference[:100])
        return tenant.id

    def _issue(self, request: TokenRequest, attempt: _Attempt, now: datetime) -> dict[str, Any]:
        tenant = self.view.tenant(request.tenant)
        if tenant is None:
            raise errors.InvalidTenant(tenant=request.tenant[:100])
        attempt.tenant_id = tenant.id
        form = request.form
        grant_type = _required(form, "grant_type")
        if grant_type in PERSON_GRANTS:
            return self._person_grant(request, tenant.id, grant_type, attempt, now)
        if grant_type != "client_credentials":
            raise errors.UnsupportedGrantType(grant_type=grant_type[:100])
        client_id, secret = _client_credentials(form, request.authorization)
        attempt.client_id = client_id
        resource_name = _resource_name(form, request.version)
        attempt.resource_name = resource_name
        client, resource, snapshot = self.view.lookup(tenant.id, client_id, resource_name)
        if client is None:
            raise errors.AppNotFound(app_id=client_id[:100], tenant=tenant.id)
        attempt.client = client
        self._authenticate(request, client, secret, attempt, now)
        if client.sp_id is None:
            raise errors.NoServicePrincipal(app_id=client.app_id, tenant=tenant.id)
        if resource is None:
            raise errors.InvalidResource(resource=resource_name[:200], tenant=tenant.id)
        attempt.resource = resource
        grant = Grant(
            tenant_id=tenant.id,
            client_app_id=client.app_id,
            client_sp_id=client.sp_id,
            resource_app_id=resource.app_id,
            resource_uri=resource_name,
            token_version=resource.token_version,
            roles=self.view.roles(snapshot, client.sp_id, resource),
            credential_type=attempt.credential_type or "secret",
        )
        return self._token_body(grant, request.version, resource_name, now)

    def _person_grant(
        self,
        request: TokenRequest,
        tenant_id: str,
        grant_type: str,
        attempt: _Attempt,
        now: datetime,
    ) -> dict[str, Any]:
        client_id, secret = _client_credentials(request.form, request.authorization)
        attempt.client_id = client_id
        client, _, _ = self.view.lookup(tenant_id, client_id, None)
        if client is None:
            raise errors.AppNotFound(app_id=client_id[:100], tenant=tenant_id)
        attempt.client = client
        presented = self.people.presented(grant_type, request.form, tenant_id)
        _check_origin(presented.platform, request.origin)
        if presented.platform == WEB:
            if secret is None and "client_assertion" not in request.form:
                raise user_errors.ConfidentialWithoutCredential()
            self._authenticate(request, client, secret, attempt, now)
            acr = "1" if attempt.credential_type == "secret" else "2"
        elif secret is not None or "client_assertion" in request.form:
            raise user_errors.PublicClientCredential()
        else:
            attempt.credential_type, acr = "none", PUBLIC_ACR
        return self.people.redeem(presented, request.form, client.app_id, acr, now)

    def _authenticate(
        self,
        request: TokenRequest,
        client: Client,
        secret: str | None,
        attempt: _Attempt,
        now: datetime,
    ) -> None:
        assertion = request.form.get("client_assertion")
        if assertion is not None:
            _check_assertion_type(request.form)
            seen = federation.presented(assertion)
            if seen.federated(client.app_id, list(client.certificates)):
                attempt.credential_type = FEDERATED
                attempt.credential_key_id = federation.verify_federated(
                    assertion, seen, client.federated, self._external_keys
                ).id
            else:
                attempt.credential_type = "certificate"
                attempt.credential_key_id = self._check_assertion(request, client, assertion, now)
        elif secret is not None:
            attempt.credential_type = "secret"
            attempt.credential_key_id = self._check_secret(client, secret, now)
        else:
            raise errors.NoCredential()

    def _check_secret(self, client: Client, secret: str, now: datetime) -> str:
        digest = self._protection.secret_hash(secret)
        for candidate in client.secrets:  # every candidate is compared: no early-exit timing
            if secret_matches(candidate.hash, digest):
                if not candidate.start_at <= now < candidate.end_at:
                    raise errors.ExpiredSecret(app_id=client.app_id)
                return candidate.key_id
        raise errors.WrongSecret(app_id=client.app_id)

    def _check_assertion(
        self, request: TokenRequest, client: Client, assertion: str, now: datetime
    ) -> str:
        header = read_header(assertion)
        cert = pick_certificate(header, list(client.certificates))
        audiences = self._token_endpoints(request.tenant)
        verified = verify_claims(assertion, header, cert, client.app_id, audiences, now)
        resource = request.form.get("scope") or request.form.get("resource") or ""
        self._replay.accept_once(
            client.app_id, resource, str(verified["jti"]), float(verified["exp"]), now
        )
        return cert.key_id

    def _token_endpoints(self, tenant_reference: str) -> list[str]:
        tenant = self.view.tenant(tenant_reference)
        names = {tenant_reference, tenant.id, tenant.domain} if tenant else {tenant_reference}
        base = self.public_url
        return sorted(
            f"{base}/{name}/oauth2/{path}" for name in names for path in ("v2.0/token", "token")
        )

    def _token_body(
        self, grant: Grant, endpoint_version: int, resource_name: str, now: datetime
    ) -> dict[str, Any]:
        key = self._keys.signing_key(now)
        payload = claims(grant, self.public_url, now, self._lifetime)
        token = sign(payload, key, grant.token_version)
        lifetime = int(self._lifetime.total_seconds())
        if endpoint_version == 2:
            return {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }
        # The v1 endpoint returns every timing field as a string (Entra ID's wire format).
        return {
            "token_type": "Bearer",
            "expires_in": str(lifetime),
            "ext_expires_in": str(lifetime),
            "expires_on": str(payload["exp"]),
            "not_before": str(payload["nbf"]),
            "resource": resource_name,
            "access_token": token,
        }

    def _log(
        self,
        request: TokenRequest,
        attempt: _Attempt,
        now: datetime,
        error: errors.TokenError | None,
        correlation_id: str,
    ) -> None:
        if attempt.tenant_id is None or (error is not None and not error.logged):
            return  # no tenant, no log to write it to; or a device's poll, not a sign-in
        client, resource = attempt.client, attempt.resource
        self._signins.record(
            SignInEvent(
                tenant_id=attempt.tenant_id,
                created_at=now,
                app_id=(client.app_id if client else attempt.client_id),
                app_display_name=client.display_name if client else None,
                service_principal_id=client.sp_id if client else None,
                resource=attempt.resource_name,
                resource_display_name=resource.display_name if resource else None,
                resource_id=resource.sp_id if resource else None,
                error_code=error.code if error else 0,
                failure_reason=error.message[:1024] if error else None,
                credential_type=attempt.credential_type,
                credential_key_id=attempt.credential_key_id,
                ip_address=request.client_ip,
                correlation_id=correlation_id[:64],
            )
        )


def _correlation_id(client_request_id: str | None) -> str:
    """Entra ID uses the caller's ``client-request-id`` as the correlation id when it is a GUID."""
    if client_request_id and len(client_request_id) == 36:
        try:
            return str(uuid.UUID(client_request_id))
        except ValueError:
            pass
    return unique_uuid()


def _refusal(error: errors.TokenError, correlation_id: str, now: datetime) -> TokenResponse:
    payload = error.body(trace_id=unique_uuid(), correlation_id=correlation_id, now=now)
    return TokenResponse(error.status, payload, {**NO_STORE, **error.headers()})


def _check_assertion_type(form: Mapping[str, str]) -> None:
    assertion_type = form.get("client_assertion_type")
    if assertion_type is None:
        raise errors.MissingParameter(parameter="client_assertion_type")
    if assertion_type != CLIENT_ASSERTION_TYPE:
        raise errors.AssertionTypeInvalid(value=assertion_type[:200])


def _check_origin(platform: str, origin: str | None) -> None:
    """A SPA's code or refresh token is redeemed by the browser, cross-origin; no other's is."""
    if platform == SPA and origin is None:
        raise user_errors.SpaWithoutOrigin()
    if platform != SPA and origin is not None:
        raise user_errors.NotSpaRedemption(origin=origin[:200])


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise errors.MissingParameter(parameter=name)
    return value


def _client_credentials(
    form: Mapping[str, str], authorization: str | None
) -> tuple[str, str | None]:
    """client_id and secret from the form or HTTP Basic (RFC 6749 §2.3.1: form-urlencoded)."""
    basic = _basic_credentials(authorization)
    if basic is not None:
        basic_id, basic_secret = basic
        if form.get("client_id") not in (None, basic_id):
            raise errors.MalformedBody(detail="client_id differs from the Authorization header.")
        if "client_secret" in form:
            raise errors.MalformedBody(detail="Use one client authentication method only.")
        return basic_id, basic_secret
    client_id = form.get("client_id")
    if not client_id:
        raise errors.MissingParameter(parameter="client_id")
    secret = form.get("client_secret")
    return client_id, secret if secret else None


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        user, _, password = decoded.partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise errors.MalformedBody(detail="The Authorization header is not valid Basic.") from None
    if not user:
        raise errors.MissingParameter(parameter="client_id")
    return unquote_plus(user), unquote_plus(password)


def _resource_name(form: Mapping[str, str], version: int) -> str:
    if version == 1:
        return _required(form, "resource").rstrip("/") or _required(form, "resource")
    scopes = [s for s in _required(form, "scope").split() if s.lower() not in RESERVED_SCOPES]
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise errors.InvalidScope(scope=" ".join(scopes)[:300] or form["scope"][:300])
    resource = scopes[0].removesuffix("/.default")
    if not resource:
        raise errors.InvalidScope(scope=scopes[0])
    return resource
