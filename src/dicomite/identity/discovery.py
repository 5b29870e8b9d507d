"""OpenID Provider metadata (OpenID Connect Discovery 1.0 §3), shaped as Entra ID serves it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from dicomite.identity.tokens import issuer


def openid_configuration(public_url: str, tenant_id: str, version: int) -> dict[str, Any]:
    base = f"{public_url}/{tenant_id}"
    oauth = f"{base}/oauth2/v2.0" if version == 2 else f"{base}/oauth2"
    host = urlsplit(public_url).netloc
    doc: dict[str, Any] = {
        "token_endpoint": f"{oauth}/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256"],
        "jwks_uri": f"{base}/discovery/v2.0/keys" if version == 2 else f"{base}/discovery/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": [
            "code",
            "id_token",
            "code id_token",
            "token",
            "id_token token",
            "code token",
            "code id_token token",
        ],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "implicit",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer(public_url, tenant_id, version),
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{oauth}/authorize",
        "device_authorization_endpoint": f"{oauth}/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{oauth}/logout",
        # Entra ID's is Microsoft Graph's (https://graph.microsoft.com/oidc/userinfo).
        "userinfo_endpoint": f"{public_url}/graph/oidc/userinfo",
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "auth_time",
            "nonce",
            "name",
            "preferred_username",
            "oid",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "roles",
        ],
        "tenant_region_scope": None,
        "cloud_instance_name": host,
        "cloud_graph_host_name": host,
        "msgraph_host": f"{host}/graph",
    }
    return doc
