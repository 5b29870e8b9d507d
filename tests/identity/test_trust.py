"""The trust settings (``identity.trust``): read at start, refused with a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomite.identity.resource_server import TrustedAuthority
from dicomite.identity.trust import InvalidTrustSetting, issuer_jwks, trusted_authorities
from tests.fixtures.server import make_server

ENTRA_V2 = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"


def test_authorities_are_issuer_audience_pairs() -> None:
    found = trusted_authorities(f"{ENTRA_V2}=api://app, https://sts.windows.net/t/=api://other,")
    assert found == [
        TrustedAuthority(ENTRA_V2, "api://app"),
        TrustedAuthority("https://sts.windows.net/t/", "api://other"),
    ]
    assert [a.token_version for a in found] == [2, 1]
    assert trusted_authorities("") == []


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("https://issuer.example", "not ISSUER=VALUE"),
        ("=api://app", "not ISSUER=VALUE"),
        ("http://issuer.example=api://app", "not an https URL"),
        ("https://issuer.example=", "not ISSUER=VALUE"),
    ],
)
def test_bad_authorities_are_refused(setting: str, reason: str) -> None:
    with pytest.raises(InvalidTrustSetting, match=reason):
        trusted_authorities(setting)


def test_a_static_jwks_file_must_exist(tmp_path: Path) -> None:
    present = tmp_path / "jwks.json"
    present.write_text('{"keys": []}')
    assert issuer_jwks(f"https://cluster.internal={present}") == {
        "https://cluster.internal": present
    }
    with pytest.raises(InvalidTrustSetting, match="does not exist"):
        issuer_jwks(f"https://cluster.internal={tmp_path / 'missing.json'}")


def test_a_jwks_url_may_stand_in_for_discovery() -> None:
    assert issuer_jwks("https://cluster.internal=https://keys.internal/jwks") == {
        "https://cluster.internal": "https://keys.internal/jwks"
    }


def test_serve_refuses_a_bad_authority_before_starting(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    bad = "http://issuer.example=api://app"
    result = server.cli(
        "serve", "--port", str(server.port), "--trusted-authority", bad, check=False
    )
    assert result.returncode != 0
    assert "--trusted-authority" in result.stdout + result.stderr
