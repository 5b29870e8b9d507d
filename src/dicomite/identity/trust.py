"""The settings that make this deployment trust other OpenID providers: external authorities
whose tokens the DICOM service accepts (``--trusted-authority ISSUER=AUDIENCE``) and static
JWKS files for issuers whose discovery cannot be reached (``--issuer-jwks ISSUER=PATH``)."""

from __future__ import annotations

from pathlib import Path

from dicomite.identity.external_keys import https_only
from dicomite.identity.resource_server import TrustedAuthority


class InvalidTrustSetting(ValueError):
    """A value that is not ``ISSUER=VALUE`` with an https issuer; ``str()`` says which."""


def trusted_authorities(setting: str) -> list[TrustedAuthority]:
    """``ISSUER=AUDIENCE`` pairs, comma-separated."""
    return [TrustedAuthority(issuer, audience) for issuer, audience in _pairs(setting)]


def issuer_jwks(setting: str) -> dict[str, Path | str]:
    """``ISSUER=PATH`` or ``ISSUER=https://…`` pairs, comma-separated: a JWKS file, which must
    exist, or a JWKS URL fetched instead of the issuer's discovery document."""
    found: dict[str, Path | str] = {}
    for issuer, value in _pairs(setting):
        if https_only(value):
            found[issuer] = value
        elif Path(value).is_file():
            found[issuer] = Path(value)
        else:
            raise InvalidTrustSetting(f"the JWKS file {value} for {issuer} does not exist")
    return found


def _pairs(setting: str) -> list[tuple[str, str]]:
    pairs = []
    for item in (part.strip() for part in setting.split(",")):
        if not item:
            continue
        issuer, equals, value = item.rpartition("=")
        if not equals or not issuer or not value:
            raise InvalidTrustSetting(f"'{item[:200]}' is not ISSUER=VALUE")
        if not https_only(issuer):
            raise InvalidTrustSetting(f"the issuer '{issuer[:200]}' is not an https URL")
        pairs.append((issuer, value))
    return pairs
