"""``--cors-origin``: browsers on an allowed origin may call the DICOM service and the management
API (preflights answered, responses marked); other origins, and every origin when none is
configured, get no ``Access-Control-Allow-Origin``. Checked on the wire and from Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext

from dicomite.bootstrap import open_context
from dicomite.cors import ANY_ORIGIN, InvalidOrigin, cors_policy, serialized_origin
from dicomite.settings import Settings
from tests.fixtures.dicom import token_for
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server, make_server

SOME_ORIGIN = "http://127.0.0.1:3000"
OTHER = "https://elsewhere.example"


# ------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    ("entry", "origin"),
    [
        ("https://Viewer.Example.org", "https://viewer.example.org"),
        ("https://viewer.example.org:443", "https://viewer.example.org"),
        ("http://localhost:80/", "http://localhost"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_origins_are_written_as_browsers_send_them(entry: str, origin: str) -> None:
    assert serialized_origin(entry) == origin


@pytest.mark.parametrize(
    "entry",
    [
        "viewer.example.org",
        "ftp://viewer.example.org",
        "https://viewer.example.org/viewer",
        "https://viewer.example.org?x=1",
        "https://user@viewer.example.org",
        "https://viewer.example.org:99999",
        "https://",
    ],
)
def test_what_is_not_an_origin_is_refused(entry: str) -> None:
    with pytest.raises(InvalidOrigin, match="not an origin"):
        serialized_origin(entry)


def test_the_setting_lists_origins_once_and_star_allows_any() -> None:
    policy = cors_policy("https://a.example, http://localhost:3000,https://A.example:443")
    assert policy.origins == ("https://a.example", "http://localhost:3000")
    assert cors_policy("https://a.example,*").origins == (ANY_ORIGIN,)
    assert not cors_policy("").enabled
    with pytest.raises(InvalidOrigin, match="At most"):
        cors_policy(",".join(f"https://h{n}.example" for n in range(101)))


def test_serve_refuses_a_bad_origin_before_starting(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    bad = "https://viewer.example.org/app"
    result = server.cli("serve", "--port", str(server.port), "--cors-origin", bad, check=False)
    assert result.returncode != 0
    assert "--cors-origin" in result.stdout + result.stderr


# ------------------------------------------------------------------- on the wire


@pytest.fixture(scope="module")
def cors_server(
    tmp_path_factory: pytest.TempPathFactory, pages: tuple[str, str]
) -> Iterator[Server]:
    """Allows the first page's origin (and another one), not the second page's."""
    server = make_server(
        tmp_path_factory.mktemp("cors"),
        extra_args=["--cors-origin", pages[0], "--cors-origin", "https://second.example"],
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reader_token(cors_server: Server) -> str:
    context = open_context(Settings(data_dir=cors_server.data_dir, tenant_id=cors_server.tenant_id))
    try:
        app = Admin(context).register(roles=("Dicom.Read",))
    finally:
        context.store.dispose()
    assert app.secret is not None
    return token_for(cors_server, app.app_id, app.secret)


def _preflight(server: Server, path: str, origin: str, method: str = "GET") -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,accept",
    }
    with server.client() as client:
        return client.options(path, headers=headers)


@pytest.mark.parametrize(
    "path", ["/dicom/v2/studies", "/dicom/v1/studies", "/graph/v1.0/applications"]
)
def test_a_preflight_from_an_allowed_origin_is_answered(
    cors_server: Server, pages: tuple[str, str], path: str
) -> None:
    allowed = pages[0]
    response = _preflight(cors_server, path, allowed)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == allowed
    assert "GET" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "accept", "content-type", "if-none-match"} <= {
        h.strip() for h in allowed.split(",")
    }
    assert response.headers["access-control-max-age"] == "3600"


def test_a_preflight_from_another_origin_is_not_allowed(cors_server: Server) -> None:
    response = _preflight(cors_server, "/dicom/v2/studies", OTHER)
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code == 400


def test_responses_to_an_allowed_origin_are_marked(cors_server: Server, reader_token: str) -> None:
    headers = {"Origin": "https://second.example", "Authorization": f"Bearer {reader_token}"}
    with cors_server.client() as client:
        found = client.get("/dicom/v2/studies", headers=headers)
        refused = client.get("/dicom/v2/studies", headers={"Origin": "https://second.example"})
    assert found.status_code in (200, 204)
    assert found.headers["access-control-allow-origin"] == "https://second.example"
    exposed = {h.strip().lower() for h in found.headers["access-control-expose-headers"].split(",")}
    assert exposed == {"location", "etag", "content-type"}
    # an error is readable by the page too (the browser would hide it otherwise)
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "https://second.example"


def test_responses_to_another_origin_are_not_marked(cors_server: Server, reader_token: str) -> None:
    headers = {"Origin": OTHER, "Authorization": f"Bearer {reader_token}"}
    with cors_server.client() as client:
        response = client.get("/dicom/v2/studies", headers=headers)
    assert "access-control-allow-origin" not in response.headers


def test_without_the_option_no_origin_is_allowed(server: Server) -> None:
    with server.client() as client:
        preflight = client.options(
            "/dicom/v2/studies",
            headers={"Origin": SOME_ORIGIN, "Access-Control-Request-Method": "GET"},
        )
        response = client.get("/dicom/v2/studies", headers={"Origin": SOME_ORIGIN})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in response.headers


# ------------------------------------------------------------------- from Chromium


FETCH = """async ([url, token]) => {
  try {
    const r = await fetch(url, {headers: {Authorization: 'Bearer ' + token,
                                          Accept: 'application/dicom+json'}});
    return {status: r.status, type: r.headers.get('content-type')};
  } catch (e) { return {error: String(e)}; }
}"""


def test_chromium_calls_the_dicom_service_only_from_the_allowed_origin(
    browser_context: BrowserContext,
    cors_server: Server,
    reader_token: str,
    pages: tuple[str, str],
) -> None:
    allowed, other = pages
    url = f"{cors_server.base_url}/dicom/v2/studies"
    page = browser_context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(allowed)
    assert page.evaluate(FETCH, [url, reader_token]) in (
        {"status": 200, "type": "application/dicom+json"},
        {"status": 204, "type": None},
    )
    assert not [text for text in console if "CORS" in text]
    page.goto(other)
    assert "Failed to fetch" in page.evaluate(FETCH, [url, reader_token])["error"]
    assert any("CORS" in text for text in console)
