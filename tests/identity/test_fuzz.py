"""Hostile token requests, generated: the answer is always the contract's JSON, never a 5xx."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.directory import DICOM_SCOPE
from tests.fixtures.server import Server

FIELDS = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "resource",
    "client_assertion",
    "client_assertion_type",
    "claims",
    "client_info",
]
VALUES = st.one_of(
    st.sampled_from(["client_credentials", DICOM_SCOPE, "", "/.default", "x" * 3000]),
    st.text(max_size=200),
    st.uuids().map(str),
)
FORMS = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(max_size=20)), VALUES, max_size=8
)


def check(response_status: int, body: dict[str, object]) -> None:
    assert response_status in (200, 400, 401, 413), response_status
    if response_status != 200:
        assert isinstance(body["error"], str)
        assert isinstance(body["error_codes"], list)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(form=FORMS, version=st.sampled_from(["oauth2/v2.0/token", "oauth2/token"]))
def test_generated_forms(server: Server, form: dict[str, str], version: str) -> None:
    with server.client() as client:
        response = client.post(f"/{server.tenant_id}/{version}", data=form)
    check(response.status_code, response.json())


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=2000),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=latin-1",
            "multipart/form-data; boundary=x",
            "",
            "application/json",
        ]
    ),
)
def test_generated_bytes(server: Server, body: bytes, content_type: str) -> None:
    with server.client() as client:
        response = client.post(
            f"/{server.tenant_id}/oauth2/v2.0/token",
            content=body,
            headers={"content-type": content_type} if content_type else {},
        )
    check(response.status_code, response.json())


HEADER_TEXT = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=300)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    credentials=st.one_of(HEADER_TEXT, st.binary(min_size=1, max_size=200).map(lambda b: b.hex()))
)
def test_generated_basic_headers(server: Server, credentials: str) -> None:
    form = {"grant_type": "client_credentials", "scope": DICOM_SCOPE}
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "authorization": f"Basic {credentials}",
    }
    with server.client() as client:
        response = client.post(
            f"/{server.tenant_id}/oauth2/v2.0/token", content=urlencode(form), headers=headers
        )
    check(response.status_code, response.json())
