"""The one resource-server validator, on tokens forged here and a clock passed as ``now``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dicomite.identity.published_keys import PublishedKey, PublishedKeys
from dicomite.identity.resource_server import (
    InsufficientPermission,
    InvalidToken,
    NoToken,
    Principal,
    Reason,
    ResourceServer,
)

BASE = "https://dicomite.test"
TENANT = "11111111-2222-3333-4444-555555555555"
RESOURCE_URI = "https://api.example.test"
RESOURCE_APP_ID = "99999999-8888-7777-6666-555555555555"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
KID = "current"
RETIRING_KID = "retiring"
RETIRES_AT = NOW + timedelta(minutes=30)

SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RETIRING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def server() -> ResourceServer:
    published = [
        PublishedKey(KID, SIGNING_KEY.public_key(), None),
        PublishedKey(RETIRING_KID, RETIRING_KEY.public_key(), RETIRES_AT),
    ]
    keys = PublishedKeys(lambda: published)
    return ResourceServer(keys, BASE, TENANT, (RESOURCE_URI, RESOURCE_APP_ID))


def _claims(**overrides: Any) -> dict[str, Any]:
    at = int(NOW.timestamp())
    claims = {
        "aud": RESOURCE_URI,
        "iss": f"{BASE}/{TENANT}/",
        "iat": at,
        "nbf": at,
        "exp": at + 3600,
        "appid": "client-app",
        "oid": "client-sp",
        "sub": "client-sp",
        "tid": TENANT,
        "roles": ["Api.Read"],
        "ver": "1.0",
    }
    return {k: v for k, v in (claims | overrides).items() if v is not None}


def _signed(key: rsa.RSAPrivateKey = SIGNING_KEY, kid: str = KID, **overrides: Any) -> str:
    token = jwt.encode(_claims(**overrides), key, algorithm="RS256", headers={"kid": kid})
    return f"Bearer {token}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict[str, Any], signature: bytes | None = None) -> tuple[str, str]:
    """A JWS signing input and, if no signature is given, the token ending in ``.``."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims()).encode())}"
    return signing_input, f"{signing_input}.{_b64(signature or b'')}"


def _refusal(server: ResourceServer, authorization: str | None, now: datetime = NOW) -> Reason:
    with pytest.raises(InvalidToken) as refused:
        server.authenticate(authorization, now)
    return refused.value.reason


def test_a_v1_token_gives_its_principal(server: ResourceServer) -> None:
    principal = server.authenticate(_signed(), NOW)
    assert principal == Principal(
        object_id="client-sp",
        subject="client-sp",
        app_id="client-app",
        tenant_id=TENANT,
        roles=frozenset({"Api.Read"}),
        scopes=frozenset(),
        token_version=1,
    )


def test_a_v2_token_for_the_app_id_with_scopes(server: ResourceServer) -> None:
    v2 = {"aud": RESOURCE_APP_ID, "iss": f"{BASE}/{TENANT}/v2.0", "appid": None, "azp": "web"}
    principal = server.authenticate(_signed(**v2, scp="Api.Read Api.Write", oid="user"), NOW)
    assert (principal.token_version, principal.app_id, principal.object_id) == (2, "web", "user")
    assert principal.scopes == {"Api.Read", "Api.Write"}
    assert principal.delegated


def test_an_empty_scp_still_makes_a_delegated_token(server: ResourceServer) -> None:
    """A person's token with no scope must not pass for an app-only one (its roles are the
    person's, allowed only with a scope)."""
    principal = server.authenticate(_signed(scp="", oid="user"), NOW)
    assert principal.delegated and principal.scopes == frozenset()
    assert not server.authenticate(_signed(), NOW).delegated


def test_the_scheme_is_case_insensitive(server: ResourceServer) -> None:
    assert server.authenticate(_signed().replace("Bearer", "bEaReR"), NOW).roles == {"Api.Read"}


def test_no_authorization_header_is_no_token(server: ResourceServer) -> None:
    for authorization in (None, ""):
        with pytest.raises(NoToken) as refused:
            server.authenticate(authorization, NOW)
        assert (refused.value.status, refused.value.error) == (401, None)  # RFC 6750 §3.1


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        ("Bearer ", Reason.EMPTY),
        ("   ", Reason.EMPTY),
        ("Basic", Reason.EMPTY),
        ("Basic dXNlcjpwYXNz", Reason.NOT_BEARER),
        ("Bearer not-a-jwt", Reason.MALFORMED),
        ("Bearer a b", Reason.MALFORMED),  # RFC 6750 §2.1: b64token has no space
        ("Bearer eyJ\u00e9.x.y", Reason.MALFORMED),
        ("Bearer a.b.c.d", Reason.MALFORMED),
    ],
)
def test_headers_that_carry_no_bearer_jwt(
    server: ResourceServer, authorization: str, reason: Reason
) -> None:
    assert _refusal(server, authorization) == reason


def test_alg_none_is_refused(server: ResourceServer) -> None:
    _, unsigned = _compact({"alg": "none", "kid": KID})
    assert _refusal(server, f"Bearer {unsigned}") == Reason.ALGORITHM


def test_hs256_keyed_with_the_public_key_is_refused(server: ResourceServer) -> None:
    """The classic key-confusion forgery: the published RSA key used as an HMAC secret."""
    pem = SIGNING_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input, _ = _compact({"alg": "HS256", "typ": "JWT", "kid": KID})
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert _refusal(server, f"Bearer {signing_input}.{_b64(mac)}") == Reason.ALGORITHM


def test_a_padded_token_is_refused(server: ResourceServer) -> None:
    """Base64url in a JWS has no padding (RFC 7515 §2); a decoder that strips it would
    otherwise accept a second spelling of the same token."""
    assert _refusal(server, f"{_signed()}==") == Reason.MALFORMED


def test_an_unknown_kid_is_refused(server: ResourceServer) -> None:
    assert _refusal(server, _signed(STRANGER_KEY, kid="stranger")) == Reason.UNKNOWN_KEY


def test_a_known_kid_signed_by_another_key_is_refused(server: ResourceServer) -> None:
    assert _refusal(server, _signed(STRANGER_KEY, kid=KID)) == Reason.SIGNATURE


def test_a_tampered_payload_is_refused(server: ResourceServer) -> None:
    header, _, signature = _signed().removeprefix("Bearer ").split(".")
    payload = _b64(json.dumps(_claims(roles=["Api.Admin"])).encode())
    assert _refusal(server, f"Bearer {header}.{payload}.{signature}") == Reason.SIGNATURE


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": f"{BASE}/another-tenant/"}, Reason.ISSUER),
        ({"iss": f"https://login.microsoftonline.com/{TENANT}/v2.0"}, Reason.ISSUER),
        ({"aud": "https://graph.microsoft.com"}, Reason.AUDIENCE),
        ({"aud": None}, Reason.CLAIMS),
        ({"exp": None}, Reason.CLAIMS),
        ({"exp": "tomorrow"}, Reason.LIFETIME_CLAIMS),
        ({"nbf": "today"}, Reason.LIFETIME_CLAIMS),
    ],
)
def test_refused_claims(server: ResourceServer, overrides: dict[str, Any], reason: Reason) -> None:
    assert _refusal(server, _signed(**overrides)) == reason


def test_expiry_with_five_minutes_of_leeway(server: ResourceServer) -> None:
    token = _signed()  # exp = NOW + 1 h
    assert server.authenticate(token, NOW + timedelta(minutes=64, seconds=59))
    assert _refusal(server, token, NOW + timedelta(minutes=65, seconds=1)) == Reason.EXPIRED


def test_not_before_with_five_minutes_of_leeway(server: ResourceServer) -> None:
    token = _signed(nbf=int(NOW.timestamp()) + 600)
    assert _refusal(server, token, NOW) == Reason.NOT_YET_VALID
    assert server.authenticate(token, NOW + timedelta(minutes=5))


def test_an_expired_token_is_refused_even_on_its_first_use(server: ResourceServer) -> None:
    token = _signed(exp=int(NOW.timestamp()) - 301)
    assert _refusal(server, token) == Reason.EXPIRED


def test_a_verified_token_is_refused_once_its_key_retires(server: ResourceServer) -> None:
    token = _signed(RETIRING_KEY, kid=RETIRING_KID)
    assert server.authenticate(token, NOW).roles == {"Api.Read"}
    after = RETIRES_AT + timedelta(seconds=1)  # still within the token's lifetime
    assert _refusal(server, token, after) == Reason.UNKNOWN_KEY


def test_a_verified_token_is_still_checked_for_expiry(server: ResourceServer) -> None:
    token = _signed()
    assert server.authenticate(token, NOW) == server.authenticate(token, NOW)
    assert _refusal(server, token, NOW + timedelta(hours=2)) == Reason.EXPIRED


def test_a_token_without_roles_is_valid_but_permits_nothing(server: ResourceServer) -> None:
    principal = server.authenticate(_signed(roles=None), NOW)
    assert principal.roles == frozenset()
    with pytest.raises(InsufficientPermission) as refused:
        principal.require_role(frozenset({"Api.Read"}), "read")
    assert (refused.value.status, refused.value.error) == (403, "insufficient_scope")
    assert refused.value.action == "read"


def test_roles_and_scopes_that_are_not_strings_are_ignored(server: ResourceServer) -> None:
    principal = server.authenticate(_signed(roles=["Api.Read", 7, {"x": 1}], scp=["a"]), NOW)
    assert (principal.roles, principal.scopes) == ({"Api.Read"}, frozenset())
    principal.require_role(frozenset({"Api.Read", "Api.Write"}), "read")
    with pytest.raises(InsufficientPermission):
        principal.require_role(frozenset({"Api.Write"}), "write")


def test_a_refused_token_is_not_remembered(server: ResourceServer) -> None:
    """A forged token must be refused at every request, not only at the first."""
    forged = _signed(STRANGER_KEY, kid=KID)
    for _ in range(2):
        assert _refusal(server, forged) == Reason.SIGNATURE
