"""Entra ID's identifier-URI rule (``validation.check_identifier_uri_owned``), value by value.
Graph, the portal and the CLI reach it through ``directory.update_application`` (issue 13,
item 5; the wire tests are in tests/graph/test_identifier_uris.py)."""

from __future__ import annotations

import uuid

import pytest

from dicomite.identity.problems import UnverifiedIdentifierUri
from dicomite.identity.validation import check_identifier_uri_owned

APP_ID, TENANT_ID, OTHER_ID = (str(uuid.uuid4()) for _ in range(3))


def _check(uri: str) -> None:
    check_identifier_uri_owned(uri, app_id=APP_ID, tenant_id=TENANT_ID, domains=["contoso.example"])


@pytest.mark.parametrize(
    "uri",
    [
        f"api://{APP_ID}",
        f"api://{APP_ID.upper()}",
        f"api://{TENANT_ID}/{APP_ID}",
        f"api://{TENANT_ID}/reports",
        f"api://reports/{APP_ID}",
        "api://contoso.example/reports",
        "https://contoso.example",
        "https://contoso.example/reports",
        "https://reports.contoso.example:8443/v1",
    ],
)
def test_identifier_uris_entra_allows(uri: str) -> None:
    _check(uri)


@pytest.mark.parametrize(
    "uri",
    [
        f"api://{OTHER_ID}",
        f"api://{TENANT_ID}",
        f"api://{TENANT_ID}/{OTHER_ID}",
        f"api://{TENANT_ID}/{OTHER_ID.replace('-', '')}",
        f"api://{APP_ID}/reports",
        "api://reports",
        "api://contoso.example",
        "api://evil.example/reports",
        "https://evil.example/reports",
        "https://contoso.example.evil.example",
        "https://evilcontoso.example",
        "https://x@contoso.example/",
        "https://contoso.example/#x",
        "http://contoso.example/reports",
        f"api://{APP_ID}:443",
    ],
)
def test_identifier_uris_entra_refuses(uri: str) -> None:
    with pytest.raises(UnverifiedIdentifierUri) as raised:
        _check(uri)
    assert raised.value.message.endswith(f"its subdomain: '{uri}'")
    assert f"api://{APP_ID}" in str(raised.value)  # the portal and CLI say what is allowed
