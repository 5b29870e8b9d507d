"""Errors of people's sign-in to applications (authorize and token endpoints), as Entra ID
words them (AADSTS codes). Each is a ``TokenError``: the token endpoint answers it in JSON
(RFC 6749 §5.2), the authorize endpoint sends ``error`` and ``error_description`` to the
redirect URI (RFC 6749 §4.1.2.1) or shows it on a page when the redirect URI is not trusted.

Exception tree::

    TokenError
    ├── InvalidRequest                invalid_request
    │   ├── MissingParameter          AADSTS900144 (errors)
    │   ├── PkceRequired              AADSTS9002325   SPA and public clients must send S256
    │   ├── PkcePlain                 AADSTS5000813   plain is refused (a documented divergence)
    │   ├── NotSpaRedemption          AADSTS9002326   Origin sent for a code of another platform
    │   ├── SpaWithoutOrigin          AADSTS9002327   SPA code redeemed without Origin
    │   ├── RedirectUriMismatch       AADSTS50011     (a page: the URI is not trusted)
    │   ├── ResponseTypeUnsupported   AADSTS700054 / 700051
    │   ├── ResponseModeUnsupported   AADSTS700053
    │   ├── NonceRequired             AADSTS900144
    │   └── PublicClientCredential    AADSTS700025
    ├── InvalidClient                 invalid_client
    │   └── ConfidentialWithoutCredential  AADSTS7000218
    ├── ResourceNotRequested          invalid_client AADSTS650057 (.default, nothing to ask for)
    ├── InvalidGrant                  invalid_grant
    │   ├── CodeInvalid               AADSTS70000
    │   ├── CodeRedeemed              AADSTS54005
    │   ├── GrantExpired              AADSTS70008
    │   ├── SpaRefreshExpired         AADSTS700084
    │   ├── PkceMismatch              AADSTS501481
    │   ├── RefreshRedirectMismatch   AADSTS50011 at the token endpoint
    │   ├── UserDisabled              AADSTS50057
    │   ├── UserGone                  AADSTS50034
    │   └── PasswordChanged           AADSTS50173
    ├── AuthorizationPending          authorization_pending AADSTS70016 (device flow, RFC 8628)
    │   └── SlowDown                  slow_down                         polled too soon
    ├── ExpiredToken                  expired_token AADSTS70020         device code expired
    ├── AuthorizationDeclined         authorization_declined AADSTS70000
    ├── BadVerificationCode           bad_verification_code AADSTS70018 unknown device code
    ├── InvalidScope                  AADSTS650053 unknown scope, 28000 several resources
    ├── ConsentRequired               consent_required AADSTS65001
    ├── AccessDenied                  access_denied AADSTS65004 (the person declined)
    └── LoginRequired                 login_required AADSTS50058 (prompt=none, no session)
"""

from __future__ import annotations

from dicomite.identity.errors import InvalidClient, InvalidRequest, TokenError


class PkceRequired(InvalidRequest):
    code = 9002325
    template = (
        "Proof Key for Code Exchange is required for cross-origin authorization code "
        "redemption and for public clients: send code_challenge with code_challenge_method=S256."
    )


class PkcePlain(InvalidRequest):
    code = 5000813
    template = (
        "The code_challenge_method '{method}' is not supported; use S256 (plain offers no "
        "protection once the authorization request is seen)."
    )


class NotSpaRedemption(InvalidRequest):
    code = 9002326
    template = (
        "Cross-origin token redemption is permitted only for the 'Single-Page Application' "
        "client-type. Request origin: '{origin}'."
    )


class SpaWithoutOrigin(InvalidRequest):
    code = 9002327
    template = (
        "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via "
        "cross-origin requests."
    )


class RedirectUriMismatch(InvalidRequest):
    code = 50011
    template = (
        "The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
        "URIs configured for the application '{app_id}'. Make sure the redirect URI sent in the "
        "request matches one added to your application in the portal."
    )


class ResponseTypeUnsupported(InvalidRequest):
    error = "unsupported_response_type"
    code = 700054
    template = "response_type '{response_type}' is not enabled for the application."


class ResponseTypeInvalid(InvalidRequest):
    error = "unsupported_response_type"
    code = 700051
    template = "response_type '{response_type}' is not supported."


class ResponseModeUnsupported(InvalidRequest):
    code = 700053
    template = (
        "response_mode '{response_mode}' cannot be used with response_type '{response_type}'."
    )


class NonceRequired(InvalidRequest):
    code = 900144
    template = "The request body must contain the following parameter: 'nonce'."


class PublicClientCredential(InvalidRequest):
    code = 700025
    template = (
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."
    )


class ConfidentialWithoutCredential(InvalidClient):
    code = 7000218
    template = (
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'."
    )


class ResourceNotRequested(TokenError):
    error = "invalid_client"
    code = 650057
    template = (
        "Invalid resource. The client has requested access to a resource which is not listed "
        "in the requested permissions in the client's application registration. Client app ID: "
        "{app_id}({app_name}). Resource value from request: {resource}. Resource app ID: "
        "{resource_app_id}. List of valid resources from app registration: {listed}."
    )


class InvalidGrant(TokenError):
    error = "invalid_grant"
    code = 70000
    template = "The provided grant is invalid."


class CodeInvalid(InvalidGrant):
    template = "The provided value for the '{parameter}' parameter is not valid. {detail}"


class CodeRedeemed(InvalidGrant):
    code = 54005
    template = (
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code "
        "or use an existing refresh token."
    )


class GrantExpired(InvalidGrant):
    code = 70008
    template = (
        "The provided authorization code or refresh token has expired due to inactivity. Send"
        " a new interactive authorization request for this user and resource."
    )


class SpaRefreshExpired(InvalidGrant):
    code = 700084
    template = (
        "The refresh token was issued to a single page app (SPA), and therefore has a fixed, "
        "limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a "
        "new sign in request must be sent by the SPA to the sign in page."
    )


class PkceMismatch(InvalidGrant):
    code = 501481
    template = (
        "The Code_Verifier does not match the code_challenge supplied in the authorization request."
    )


class RefreshRedirectMismatch(InvalidGrant):
    code = 50011
    template = (
        "The redirect URI '{redirect_uri}' does not match the one the authorization code was "
        "issued for."
    )


class UserDisabled(InvalidGrant):
    code = 50057
    template = "The user account is disabled."


class UserGone(InvalidGrant):
    code = 50034
    template = "The user account does not exist in the directory."


class PasswordChanged(InvalidGrant):
    code = 50173
    template = (
        "The provided grant has expired due to it being revoked, a fresh auth token is "
        "needed. The user might have changed or reset their password."
    )


class UnknownScope(TokenError):
    error = "invalid_scope"
    code = 650053
    template = (
        "The application asked for scope '{scope}' that doesn't exist on the resource '{resource}'."
    )


class SeveralResources(TokenError):
    error = "invalid_scope"
    code = 28000
    template = (
        "Provided value for the input parameter scope is not valid because it contains more "
        "than one resource. Scope {scope} is not valid."
    )


class ConsentRequired(TokenError):
    error = "consent_required"
    code = 65001
    template = (
        "The user or administrator has not consented to use the application with ID "
        "'{app_id}' named '{app_name}'. Send an interactive authorization request for this "
        "user and resource."
    )


class AccessDenied(TokenError):
    error = "access_denied"
    code = 65004
    template = "User declined to consent to access the app."


class LoginRequired(TokenError):
    error = "login_required"
    code = 50058
    template = "A silent sign-in request was sent but no user is signed in."


# The device authorization grant's polling answers (RFC 8628 §3.5, with the error names and
# codes of Entra ID's device code documentation).


class AuthorizationPending(TokenError):
    error = "authorization_pending"
    code = 70016
    template = "OAuth 2.0 device flow error. Authorization is pending. Continue polling."
    logged = False  # a poll while the person signs in is no sign-in event


class SlowDown(AuthorizationPending):
    """RFC 8628 §3.5: still pending, and the device polls faster than its interval allows.
    (Entra ID documents no AADSTS code of its own for it.)"""

    error = "slow_down"
    template = (
        "OAuth 2.0 device flow error. Authorization is pending. Poll at most every "
        "{interval} seconds."
    )


class ExpiredToken(TokenError):
    error = "expired_token"
    code = 70020
    template = (
        "The provided value for the input parameter 'device_code' is not valid. This device "
        "code has expired."
    )


class AuthorizationDeclined(TokenError):
    error = "authorization_declined"
    code = 70000
    template = "The end user declined the authorization request."


class BadVerificationCode(TokenError):
    error = "bad_verification_code"
    code = 70018
    template = "The provided value for the input parameter 'device_code' is not valid."
