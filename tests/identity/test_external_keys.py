"""Keys of other OpenID providers, fetched guardedly (``identity.external_keys``), against
the test issuer over HTTPS with its own CA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomite.identity.external_keys import ExternalKeys, FetchFailed
from tests.fixtures.oidc_issuer import OidcIssuer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_come_from_the_discovery_documents_jwks(oidc_issuer: OidcIssuer) -> None:
    keys = ExternalKeys(ca_bundle=oidc_issuer.ca_file)
    kid = next(iter(oidc_issuer.keys))
    key = keys.public_key(oidc_issuer.issuer("keys-a"), kid)
    assert key is not None
    assert key.public_numbers() == oidc_issuer.keys[kid].public_key().public_numbers()


def test_an_unknown_kid_refetches_at_most_once_per_interval(oidc_issuer: OidcIssuer) -> None:
    clock = Clock()
    keys = ExternalKeys(ca_bundle=oidc_issuer.ca_file, min_refresh=30, clock=clock)
    name = "keys-rotation"
    assert keys.public_key(oidc_issuer.issuer(name), next(iter(oidc_issuer.keys))) is not None
    before = len(oidc_issuer.requests)
    for _ in range(20):
        assert keys.public_key(oidc_issuer.issuer(name), "forged-kid") is None
    assert len(oidc_issuer.requests) == before  # within the interval: no fetch at all
    new_kid = oidc_issuer.add_key()
    try:
        clock.now += 31
        assert keys.public_key(oidc_issuer.issuer(name), new_kid) is not None
        assert len(oidc_issuer.requests) == before + 2  # discovery and JWKS, once
    finally:
        del oidc_issuer.keys[new_kid]


def test_the_system_trust_store_does_not_trust_a_private_ca(oidc_issuer: OidcIssuer) -> None:
    with pytest.raises(FetchFailed, match="could not be reached"):
        ExternalKeys().public_key(oidc_issuer.issuer("keys-untrusted"), "x")


def test_a_redirect_to_another_host_is_not_followed(oidc_issuer: OidcIssuer) -> None:
    oidc_issuer.redirect_elsewhere.add("keys-redirect")
    keys = ExternalKeys(ca_bundle=oidc_issuer.ca_file)
    with pytest.raises(FetchFailed, match="another host"):
        keys.public_key(oidc_issuer.issuer("keys-redirect"), "x")


def test_an_oversized_document_is_refused(oidc_issuer: OidcIssuer) -> None:
    oidc_issuer.oversized.add("keys-big")
    keys = ExternalKeys(ca_bundle=oidc_issuer.ca_file)
    with pytest.raises(FetchFailed, match="larger than"):
        keys.public_key(oidc_issuer.issuer("keys-big"), "x")


def test_a_failure_is_remembered_until_the_next_fetch_may_run(oidc_issuer: OidcIssuer) -> None:
    oidc_issuer.oversized.add("keys-down")
    keys = ExternalKeys(ca_bundle=oidc_issuer.ca_file, min_refresh=30, clock=Clock())
    for _ in range(5):
        with pytest.raises(FetchFailed):
            keys.public_key(oidc_issuer.issuer("keys-down"), "x")
    assert sum("keys-down" in path for path in oidc_issuer.requests) == 1


def test_plain_http_issuers_are_never_fetched() -> None:
    with pytest.raises(FetchFailed, match="not an https URL"):
        ExternalKeys().public_key("http://127.0.0.1:9/issuer", "x")


def test_a_static_jwks_file_stands_in_for_discovery(
    oidc_issuer: OidcIssuer, tmp_path: Path
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(oidc_issuer.jwks()))
    on_premises = "https://cluster.internal.example/oidc"
    keys = ExternalKeys(static_jwks={on_premises: path})
    assert keys.public_key(on_premises, next(iter(oidc_issuer.keys))) is not None


def test_a_jwks_url_is_fetched_instead_of_discovery(oidc_issuer: OidcIssuer) -> None:
    elsewhere = "https://unreachable.internal/issuer"
    keys = ExternalKeys(
        ca_bundle=oidc_issuer.ca_file, static_jwks={elsewhere: f"{oidc_issuer.base}/keys"}
    )
    before = len(oidc_issuer.requests)
    assert keys.public_key(elsewhere, next(iter(oidc_issuer.keys))) is not None
    assert oidc_issuer.requests[before:] == ["/keys"]
