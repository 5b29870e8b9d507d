"""The small OData query language, as pure functions."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from dicomite.graph import odata
from dicomite.graph.errors import BadRequest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("appId eq 'a-b'", odata.Filter("appId", "eq", "a-b")),
        ("displayName eq 'O''Brien'", odata.Filter("displayName", "eq", "O'Brien")),
        ("startswith(displayName, 'Dic')", odata.Filter("displayName", "startswith", "Dic")),
        (
            "servicePrincipalNames/any(x:x eq 'api://a')",
            odata.Filter("servicePrincipalNames", "any", "api://a"),
        ),
    ],
)
def test_filters(text: str, expected: odata.Filter) -> None:
    assert odata.parse_filter(text) == expected


@pytest.mark.parametrize(
    "text", ["appId ne 'x'", "appId eq x", "appId eq 'x' and displayName eq 'y'", "endswith(a,'b')"]
)
def test_unsupported_filters(text: str) -> None:
    with pytest.raises(BadRequest, match="Invalid filter clause"):
        odata.parse_filter(text)


def test_matching_ignores_case() -> None:
    assert odata.Filter("displayName", "eq", "DICOM").matches("dicom")
    assert odata.Filter("displayName", "startswith", "di").matches("DICOM app")
    assert not odata.Filter("displayName", "eq", "x").matches(None)
    assert odata.Filter("names", "any", "A").matches(["b", "a"])


def test_paging_and_links() -> None:
    query = odata.parse(QueryParams("$top=2&$skiptoken=2&$filter=appId eq 'x'"))
    items, next_skip = odata.page(list(range(7)), query)
    assert list(items) == [2, 3] and next_skip == 4
    link = odata.next_link("https://h/graph/v1.0/applications", QueryParams("$top=2"), next_skip)
    assert link == {"@odata.nextLink": "https://h/graph/v1.0/applications?%24top=2&%24skiptoken=4"}
    assert odata.next_link("https://h", QueryParams(""), None) == {}
    last = odata.parse(QueryParams("$top=5&$skiptoken=5"))
    assert odata.page(list(range(7)), last) == ([5, 6], None)
