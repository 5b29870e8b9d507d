"""The authorization endpoint (RFC 6749 §3.1, OpenID Connect Core §3), framework-free.

A request is read in two steps, because where an error may be sent depends on the first:

1. ``target_of``: the client and the redirect URI. Until both are known to belong together,
   nothing is sent to the redirect URI (an open redirector otherwise, RFC 6749 §4.1.2.1); the
   endpoint shows an error page.
2. ``read_request``: everything else. Its errors go to the redirect URI, with ``state``.

Then ``decide`` says what the person must do first (sign in, consent) or that the request is
approved, and ``approve`` issues the code and tokens the ``response_type`` asks for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.orm import Session

from dicomite.identity import codes, user_errors
from dicomite.identity.delegation import Delegation, delegation, may_consent
from dicomite.identity.directory import find_application_by_app_id
from dicomite.identity.errors import AppNotFound, MalformedBody, MissingParameter, TokenError
from dicomite.identity.person_grants import PUBLIC_ACR, PersonTokens
from dicomite.identity.principals import service_principal_for_app
from dicomite.identity.scopes import OPENID, ScopeRequest, parse_scope
from dicomite.identity.user_tokens import UserGrant, half_hash
from dicomite.identity.validation import PLATFORMS
from dicomite.store.tables import Application, User

WEB, SPA, PUBLIC_CLIENT = PLATFORMS
RESPONSE_TYPES = frozenset({"code", "id_token", "token"})
RESPONSE_MODES = frozenset({"query", "fragment", "form_post"})
PROMPTS = frozenset({"login", "none", "consent", "select_account"})
# After a forced sign-in (prompt=login) the request comes back with this parameter: the
# session must have signed in at or after that moment (seconds since the epoch).
SIGNED_IN_AFTER = "dicomite_signed_in_after"
# The nonce is kept with the code until it goes into the ID token: the column's width.
MAX_NONCE_CHARS = 512
# RFC 7636 §4.2: S256's challenge is BASE64URL(SHA256(verifier)), 43 characters, unpadded;
# any other would match no verifier, and the person would sign in for nothing.
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Target:
    """The client and a redirect URI registered for it: where answers may go."""

    app_id: str
    app_name: str
    platform: str
    redirect_uri: str
    response_mode: str
    state: str | None


@dataclass(frozen=True)
class AuthorizeRequest:
    target: Target
    response_type: frozenset[str]
    scope: ScopeRequest
    scope_text: str
    nonce: str | None
    code_challenge: str | None
    prompt: str | None
    login_hint: str | None
    signed_in_after: datetime | None


@dataclass(frozen=True)
class Answer:
    """What goes back to the client: ``params`` at the redirect URI, in the response mode."""

    target: Target
    params: dict[str, str] = field(default_factory=dict)

    def location(self) -> str:
        """The redirect for ``query`` and ``fragment`` (``form_post`` is a page, not this)."""
        scheme, netloc, path, query, _ = urlsplit(self.target.redirect_uri)
        if self.target.response_mode == "fragment":
            return urlunsplit((scheme, netloc, path, query, urlencode(self.params)))
        merged = [*parse_qsl(query, keep_blank_values=True), *self.params.items()]
        return urlunsplit((scheme, netloc, path, urlencode(merged), ""))


def error_answer(target: Target, error: TokenError, trace_id: str, now: datetime) -> Answer:
    """RFC 6749 §4.1.2.1 with Entra ID's description (AADSTS code, trace id, timestamp)."""
    body = error.body(trace_id=trace_id, correlation_id=trace_id, now=now)
    params = {"error": error.error, "error_description": body["error_description"]}
    if target.state is not None:
        params["state"] = target.state
    return Answer(target, params)


# Step 1 -----------------------------------------------------------------------------------


def target_of(
    session: Session, tenant_id: str, params: Mapping[str, str]
) -> tuple[Target, Application]:
    client_id = _required(params, "client_id")
    app = find_application_by_app_id(session, tenant_id, client_id)
    if app is None:
        raise AppNotFound(app_id=client_id[:100], tenant=tenant_id)
    redirect_uri = params.get("redirect_uri") or _only_redirect_uri(app)
    platform = platform_of(app, redirect_uri)
    if platform is None:
        raise user_errors.RedirectUriMismatch(redirect_uri=redirect_uri[:300], app_id=app.app_id)
    response_type = frozenset(params.get("response_type", "").split())
    mode = params.get("response_mode") or ("query" if response_type == {"code"} else "fragment")
    if mode not in RESPONSE_MODES:
        mode = "query" if response_type == {"code"} else "fragment"
    state = params.get("state")
    return Target(app.app_id, app.display_name, platform, redirect_uri, mode, state), app


def platform_of(app: Application, redirect_uri: str) -> str | None:
    """The platform ``redirect_uri`` is registered for, compared exactly; a public client's
    ``http://localhost`` URI matches any port, as Entra ID's (RFC 8252 §7.3)."""
    for platform, uris in (
        (SPA, app.spa_redirect_uris),
        (PUBLIC_CLIENT, app.public_client_redirect_uris),
        (WEB, app.redirect_uris),
    ):
        if redirect_uri in uris:
            return platform
    if any(_same_loopback(uri, redirect_uri) for uri in app.public_client_redirect_uris):
        return PUBLIC_CLIENT
    return None


def _same_loopback(registered: str, given: str) -> bool:
    mine, theirs = urlsplit(registered), urlsplit(given)
    try:
        theirs.port  # noqa: B018 - a port that is not a number makes the URI invalid
    except ValueError:
        return False
    # Parsing drops tabs and newlines anywhere and leading controls and spaces, as browsers
    # do (WHATWG URL's basic parser): a URI that parsing changes is not the one registered.
    if urlunsplit(theirs) != given:
        return False
    return (
        mine.scheme == theirs.scheme == "http"
        and mine.hostname == theirs.hostname
        and mine.hostname in ("localhost", "127.0.0.1")
        and (mine.path or "/") == (theirs.path or "/")
        and mine.query == theirs.query
        and not theirs.fragment
        and not theirs.username
    )


def _only_redirect_uri(app: Application) -> str:
    """Without ``redirect_uri``, Entra ID uses the app's one redirect URI if it has one."""
    uris = [*app.redirect_uris, *app.spa_redirect_uris, *app.public_client_redirect_uris]
    if len(uris) != 1:
        raise MissingParameter(parameter="redirect_uri")
    return uris[0]


# Step 2 -----------------------------------------------------------------------------------


def read_request(target: Target, app: Application, params: Mapping[str, str]) -> AuthorizeRequest:
    response_type = _response_type(params, app)
    mode = params.get("response_mode")
    if (mode is not None and mode not in RESPONSE_MODES) or (
        target.response_mode == "query" and response_type != {"code"}
    ):
        raise user_errors.ResponseModeUnsupported(
            response_mode=(mode or "")[:40], response_type=" ".join(sorted(response_type))
        )
    scope_text = _required(params, "scope")
    scope = parse_scope(scope_text)
    nonce = _nonce(params, response_type, scope)
    prompt = params.get("prompt")
    if prompt is not None and prompt not in PROMPTS:
        raise MalformedBody(detail=f"prompt '{prompt[:40]}' is not supported.")
    return AuthorizeRequest(
        target=target,
        response_type=response_type,
        scope=scope,
        scope_text=" ".join(scope_text.split()),
        nonce=nonce,
        code_challenge=_code_challenge(params, target.platform, response_type),
        prompt=prompt,
        login_hint=params.get("login_hint"),
        signed_in_after=_moment(params.get(SIGNED_IN_AFTER)),
    )


def _nonce(
    params: Mapping[str, str], response_type: frozenset[str], scope: ScopeRequest
) -> str | None:
    nonce = params.get("nonce")
    if "id_token" in response_type and (not nonce or OPENID not in scope.reserved):
        if OPENID not in scope.reserved:
            raise MalformedBody(detail="response_type id_token needs the openid scope.")
        raise user_errors.NonceRequired()
    if nonce is not None and len(nonce) > MAX_NONCE_CHARS:
        raise MalformedBody(detail=f"nonce is longer than {MAX_NONCE_CHARS} characters.")
    return nonce


def _response_type(params: Mapping[str, str], app: Application) -> frozenset[str]:
    text = _required(params, "response_type")
    kinds = frozenset(text.split())
    if not kinds <= RESPONSE_TYPES:
        raise user_errors.ResponseTypeInvalid(response_type=text[:60])
    if "id_token" in kinds and not app.enable_id_token_issuance:
        raise user_errors.ResponseTypeUnsupported(response_type="id_token")
    if "token" in kinds and not app.enable_access_token_issuance:
        raise user_errors.ResponseTypeUnsupported(response_type="token")
    return kinds


def _code_challenge(
    params: Mapping[str, str], platform: str, response_type: frozenset[str]
) -> str | None:
    challenge = params.get("code_challenge")
    if challenge is None:
        if "code" in response_type and platform in (SPA, PUBLIC_CLIENT):
            raise user_errors.PkceRequired()
        return None
    method = params.get("code_challenge_method", "plain")  # RFC 7636 §4.3's default
    if method != "S256":
        raise user_errors.PkcePlain(method=method[:20])
    if not _CHALLENGE.fullmatch(challenge):
        raise MalformedBody(detail="code_challenge is not a base64url SHA-256 (RFC 7636 §4.2).")
    return challenge


def _moment(value: str | None) -> datetime | None:
    """Seconds since the epoch, as ``_to_sign_in`` wrote them; anything else (ten digits
    reach the year 2286, more may pass ``datetime``'s 9999) is ignored."""
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 10:
        return None
    return datetime.fromtimestamp(int(value), UTC)


# Deciding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInNeeded:
    fresh: bool  # prompt=login or select_account: even when a session exists


@dataclass(frozen=True)
class ConsentNeeded:
    delegation: Delegation


@dataclass(frozen=True)
class Approved:
    pass


Decision = SignInNeeded | ConsentNeeded | Approved


def decide(
    session: Session,
    tenant_id: str,
    request: AuthorizeRequest,
    app: Application,
    user: User | None,
    authenticated_at: datetime | None,
) -> Decision:
    silent = request.prompt == "none"
    fresh = request.prompt in ("login", "select_account")
    if user is None or authenticated_at is None:
        if silent:
            raise user_errors.LoginRequired()
        return SignInNeeded(fresh=False)
    if fresh or (request.signed_in_after and authenticated_at < request.signed_in_after):
        return SignInNeeded(fresh=True)
    client = service_principal_for_app(session, tenant_id, app.app_id)
    found = delegation(session, tenant_id, app, client, request.scope, user)
    asks = bool(found.missing) or (request.prompt == "consent" and bool(found.asked))
    if not asks:
        return Approved()
    if silent or not may_consent(session, user, found):
        raise user_errors.ConsentRequired(app_id=app.app_id, app_name=app.display_name)
    return ConsentNeeded(found)


def approve(
    session: Session,
    people: PersonTokens,
    request: AuthorizeRequest,
    user: User,
    authenticated_at: datetime,
    now: datetime,
) -> Answer:
    """The code and tokens ``response_type`` asks for, at the redirect URI."""
    target = request.target
    grant = people.grant_for(
        session, user.tenant_id, target.app_id, user, request.scope, PUBLIC_ACR, authenticated_at
    )
    params: dict[str, str] = {}
    hashes: dict[str, str] = {}
    if "code" in request.response_type:
        code_grant = codes.CodeGrant(
            tenant_id=user.tenant_id,
            client_app_id=target.app_id,
            user_id=user.id,
            redirect_uri=target.redirect_uri,
            platform=target.platform,
            scope=request.scope_text,
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            authenticated_at=authenticated_at,
        )
        params["code"] = codes.issue_code(session, code_grant, now)
        hashes["c_hash"] = half_hash(params["code"])
    if "token" in request.response_type:
        params |= _implicit_access(people, grant, request, now)
        hashes["at_hash"] = half_hash(params["access_token"])
    if "id_token" in request.response_type:
        params["id_token"] = people.id_token(grant, now, request.nonce, hashes)
    if target.state is not None:
        params["state"] = target.state
    return Answer(target, params)


def _implicit_access(
    people: PersonTokens, grant: UserGrant, request: AuthorizeRequest, now: datetime
) -> dict[str, str]:
    lifetime = int(people.lifetime.total_seconds())
    return {
        "access_token": people.access_token(grant, now),
        "token_type": "Bearer",
        "expires_in": str(lifetime),
        "scope": request.scope.granted(grant.scopes) if request.scope.resource else "",
    }


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise MissingParameter(parameter=name)
    return value
