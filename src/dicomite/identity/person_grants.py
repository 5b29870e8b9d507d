"""Tokens for a person, through an application: the authorization-code grant (RFC 6749 §4.1.3,
with PKCE, RFC 7636 §4.6), the refresh-token grant (RFC 6749 §6) and the device authorization
grant (RFC 8628 §3.4, ``device_codes``), and the tokens they issue (delegated access token, ID
token, refresh token).

The token endpoint (``oauth2.TokenService``) authenticates web clients before a code or refresh
token is consumed; SPA and public clients have no credential, and PKCE (or a device code,
which only the device holds) stands in for it. Every
redemption reads the person and the consents again: a person disabled, deleted or whose
password was reset, or a consent revoked, gets no more tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from dicomite.identity import codes, device_codes, user_errors
from dicomite.identity.delegation import delegation, person_roles
from dicomite.identity.directory import find_application_by_app_id
from dicomite.identity.errors import AppNotFound, MalformedBody, MissingParameter
from dicomite.identity.keys import KeyRing
from dicomite.identity.principals import service_principal_for_app
from dicomite.identity.protection import KeyProtection
from dicomite.identity.scopes import OFFLINE_ACCESS, OPENID, ScopeRequest, parse_scope
from dicomite.identity.tokens import sign
from dicomite.identity.user_tokens import (
    Audience,
    Person,
    UserGrant,
    access_claims,
    half_hash,
    id_token_claims,
)
from dicomite.identity.validation import PLATFORMS
from dicomite.store.db import Store
from dicomite.store.tables import AuthorizationCode, RefreshToken, User

PUBLIC_ACR = "0"  # azpacr/appidacr of a client without a credential
WEB, _, PUBLIC_CLIENT = PLATFORMS
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# The form field each grant presents its code or token in.
FIELDS = {
    "authorization_code": "code",
    "refresh_token": "refresh_token",
    DEVICE_CODE_GRANT: "device_code",
}
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.1


@dataclass(frozen=True)
class Presented:
    """A code or refresh token found in the store, not consumed yet."""

    kind: str  # "code", "refresh_token" or "device_code": the form field that carried it
    hash: str
    platform: str
    client_app_id: str


@dataclass(frozen=True)
class Issued:
    grant: UserGrant
    request: ScopeRequest
    refresh_token: str | None
    nonce: str | None


class PersonTokens:
    def __init__(
        self,
        *,
        store: Store,
        keys: KeyRing,
        protection: KeyProtection,
        public_url: str,
        lifetime: timedelta,
    ) -> None:
        self._store = store
        self._keys = keys
        self._protection = protection
        self.public_url = public_url
        self.lifetime = lifetime

    def authorize_device(
        self, tenant_id: str, form: Mapping[str, str], now: datetime
    ) -> dict[str, Any]:
        """The device authorization endpoint (RFC 8628 §3.1): codes for a device to show."""
        with self._store.write() as session:
            return device_codes.authorize(session, tenant_id, form, self.public_url, now)

    # The token endpoint: find, check the client, then consume.

    def presented(self, grant_type: str, form: Mapping[str, str], tenant_id: str) -> Presented:
        field = FIELDS[grant_type]
        value = form.get(field)
        if not value:
            raise MissingParameter(parameter=field)
        hashed = codes.digest(value)
        with self._store.read() as session:
            if field == "device_code":
                client_app_id, public = device_codes.client_of(session, hashed, tenant_id)
                return Presented(field, hashed, PUBLIC_CLIENT if public else WEB, client_app_id)
            row: AuthorizationCode | RefreshToken | None = (
                session.get(AuthorizationCode, hashed)
                if field == "code"
                else session.get(RefreshToken, hashed)
            )
            if row is None or row.tenant_id != tenant_id:
                raise user_errors.CodeInvalid(parameter=field, detail="")
            return Presented(field, hashed, row.platform, row.client_app_id)

    def redeem(
        self,
        presented: Presented,
        form: Mapping[str, str],
        client_app_id: str,
        client_acr: str,
        now: datetime,
    ) -> dict[str, Any]:
        if presented.client_app_id != client_app_id:
            raise user_errors.CodeInvalid(
                parameter=presented.kind, detail="It was issued to another application."
            )
        if presented.kind == "device_code":
            self._polled(presented, now)
        redeem = {
            "code": self._redeem_code,
            "refresh_token": self._redeem_refresh,
            "device_code": self._redeem_device,
        }[presented.kind]
        issued = self._consumed(redeem, presented, form, client_acr, now)
        return self.token_body(issued, form.get("client_info") == "1", now)

    def _polled(self, presented: Presented, now: datetime) -> None:
        """A device's poll, recorded; refused until the person has approved."""
        with self._store.write() as session:
            answer = device_codes.poll(session, presented.hash, now)
        if answer is not None:
            raise answer

    def _consumed(
        self,
        redeem: Callable[[Session, Presented, Mapping[str, str], str, datetime], Issued],
        presented: Presented,
        form: Mapping[str, str],
        client_acr: str,
        now: datetime,
    ) -> Issued:
        """The redemption's outcome; a replay's revocation is committed before it is refused."""
        with self._store.write() as session:
            try:
                return redeem(session, presented, form, client_acr, now)
            except _Replayed as replay:
                codes.revoke_family(session, replay.family_id)
                refusal = replay.refusal
        raise refusal

    def _redeem_code(
        self,
        session: Session,
        presented: Presented,
        form: Mapping[str, str],
        client_acr: str,
        now: datetime,
    ) -> Issued:
        row = session.get_one(AuthorizationCode, presented.hash)
        if row.redeemed_at is not None:
            raise _Replayed(row.family_id, user_errors.CodeRedeemed())
        if row.expires_at <= now:
            raise user_errors.GrantExpired()
        redirect_uri = form.get("redirect_uri")
        if not redirect_uri:
            raise MissingParameter(parameter="redirect_uri")
        if redirect_uri != row.redirect_uri:
            raise user_errors.RefreshRedirectMismatch(redirect_uri=redirect_uri[:300])
        _check_verifier(row.code_challenge, form.get("code_verifier"))
        family_id = str(uuid.uuid4())
        if not codes.mark_code_redeemed(session, presented.hash, family_id, now):
            raise user_errors.CodeRedeemed()
        user = _person(session, row.user_id, row.authenticated_at)
        request = parse_scope(row.scope)
        grant = self._grant(session, row.client_app_id, user, request, client_acr, row)
        refresh = _new_family(session, family_id, grant, request, row.platform, row.scope, now)
        return Issued(grant, request, refresh, row.nonce)

    def _redeem_device(
        self,
        session: Session,
        presented: Presented,
        form: Mapping[str, str],
        client_acr: str,
        now: datetime,
    ) -> Issued:
        approval = device_codes.take(session, presented.hash)
        user = _person(session, approval.user_id, approval.authenticated_at)
        request = parse_scope(approval.scope)
        grant = self.grant_for(
            session,
            approval.tenant_id,
            approval.client_app_id,
            user,
            request,
            client_acr,
            approval.authenticated_at,
        )
        family_id = str(uuid.uuid4())
        refresh = _new_family(
            session, family_id, grant, request, presented.platform, approval.scope, now
        )
        return Issued(grant, request, refresh, None)

    def _redeem_refresh(
        self,
        session: Session,
        presented: Presented,
        form: Mapping[str, str],
        client_acr: str,
        now: datetime,
    ) -> Issued:
        row = session.get_one(RefreshToken, presented.hash)
        if row.used_at is not None:
            refusal = user_errors.CodeInvalid(
                parameter="refresh_token",
                detail="It was used already; the tokens issued from it are revoked.",
            )
            raise _Replayed(row.family_id, refusal)
        if row.expires_at <= now:
            raise (
                user_errors.SpaRefreshExpired()
                if row.platform == codes.SPA
                else user_errors.GrantExpired()
            )
        if not codes.mark_refresh_used(session, presented.hash, now):
            raise _Replayed(
                row.family_id, user_errors.CodeInvalid(parameter="refresh_token", detail="")
            )
        user = _person(session, row.user_id, row.authenticated_at)
        request = parse_scope(form.get("scope") or row.scope)
        grant = self._grant(session, row.client_app_id, user, request, client_acr, row)
        refresh = codes.issue_refresh(session, row, now)
        return Issued(grant, request, refresh, None)

    def _grant(
        self,
        session: Session,
        client_app_id: str,
        user: User,
        request: ScopeRequest,
        client_acr: str,
        row: AuthorizationCode | RefreshToken,
    ) -> UserGrant:
        return self.grant_for(
            session, row.tenant_id, client_app_id, user, request, client_acr, row.authenticated_at
        )

    def grant_for(
        self,
        session: Session,
        tenant_id: str,
        client_app_id: str,
        user: User,
        request: ScopeRequest,
        client_acr: str,
        authenticated_at: datetime,
    ) -> UserGrant:
        """The grant as the consents stand now; ``ConsentRequired`` when one is missing."""
        app = find_application_by_app_id(session, tenant_id, client_app_id)
        if app is None:
            raise AppNotFound(app_id=client_app_id, tenant=tenant_id)
        client = service_principal_for_app(session, tenant_id, client_app_id)
        found = delegation(session, tenant_id, app, client, request, user)
        if found.missing:
            raise user_errors.ConsentRequired(app_id=app.app_id, app_name=app.display_name)
        resource = found.resource
        version = 2 if resource.requested_access_token_version == 2 else 1
        return UserGrant(
            tenant_id=tenant_id,
            client_app_id=client_app_id,
            person=Person(user.id, user.user_principal_name, user.display_name),
            subject=self._protection.pairwise_subject(user.id, client_app_id),
            audience=Audience(resource.app_id, found.resource_name, version),
            scopes=found.token_scopes(request),
            roles=person_roles(user, resource),
            client_acr=client_acr,
            authenticated_at=authenticated_at,
        )

    # Tokens.

    def access_token(self, grant: UserGrant, now: datetime) -> str:
        payload = access_claims(grant, self.public_url, now, self.lifetime)
        return sign(payload, self._keys.signing_key(now), grant.audience.token_version)

    def id_token(
        self, grant: UserGrant, now: datetime, nonce: str | None, hashes: dict[str, str]
    ) -> str:
        payload = id_token_claims(grant, self.public_url, now, nonce=nonce, hashes=hashes)
        return sign(payload, self._keys.signing_key(now), 2)

    def token_body(self, issued: Issued, client_info: bool, now: datetime) -> dict[str, Any]:
        grant, request = issued.grant, issued.request
        lifetime = int(self.lifetime.total_seconds())
        access_token = self.access_token(grant, now)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": _scope_text(request, grant),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }
        if issued.refresh_token is not None:
            body["refresh_token"] = issued.refresh_token
        if OPENID in request.reserved:
            hashes = {"at_hash": half_hash(access_token)}
            body["id_token"] = self.id_token(grant, now, issued.nonce, hashes)
        if client_info:
            body["client_info"] = client_info_of(grant)
        return body


class _Replayed(Exception):
    def __init__(self, family_id: str | None, refusal: user_errors.InvalidGrant) -> None:
        self.family_id = family_id
        self.refusal = refusal


def _new_family(
    session: Session,
    family_id: str,
    grant: UserGrant,
    request: ScopeRequest,
    platform: str,
    scope: str,
    now: datetime,
) -> str | None:
    """The first refresh token of a new family, when ``offline_access`` was asked for."""
    if OFFLINE_ACCESS not in request.reserved:
        return None
    family = RefreshToken(
        family_id=family_id,
        tenant_id=grant.tenant_id,
        client_app_id=grant.client_app_id,
        user_id=grant.person.id,
        platform=platform,
        scope=scope,
        authenticated_at=grant.authenticated_at,
        expires_at=now + codes.SPA_REFRESH_LIFETIME,
    )
    return codes.issue_refresh(session, family, now)


def _check_verifier(challenge: str | None, verifier: str | None) -> None:
    """RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge. A verifier for a code issued
    without a challenge is refused too (a downgrade, OAuth 2.0 Security BCP §4.8.2)."""
    if challenge is None and verifier is None:
        return
    if challenge is None or verifier is None:
        raise user_errors.PkceMismatch()
    if not _VERIFIER.fullmatch(verifier):
        raise MalformedBody(
            detail="code_verifier must be 43 to 128 letters, digits, '-', '.', '_' or '~' "
            "(RFC 7636 §4.1)."
        )
    digest = hashlib.sha256(verifier.encode()).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if not secrets.compare_digest(computed, challenge):
        raise user_errors.PkceMismatch()


def _person(session: Session, user_id: str, authenticated_at: datetime) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise user_errors.UserGone()
    if not user.account_enabled:
        raise user_errors.UserDisabled()
    if user.password_changed_at > authenticated_at:
        raise user_errors.PasswordChanged()
    return user


def _scope_text(request: ScopeRequest, grant: UserGrant) -> str:
    if request.resource is None:
        return " ".join(sorted(request.reserved))
    return request.granted(grant.scopes)


def client_info_of(grant: UserGrant) -> str:
    """msal's ``client_info``: the home account (uid: the person, utid: the tenant)."""
    value = json.dumps({"uid": grant.person.id, "utid": grant.tenant_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(value.encode()).rstrip(b"=").decode()
