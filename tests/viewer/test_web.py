"""The viewer over HTTP, in-process: /viewer/ and its deep links are OHIF's index.html, the
configuration is generated, the build's files are served at the root by their names only
(any other path is answered as before: 404, or another route's 405), and without a build
/viewer/ says how to install it, until one appears."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dicomite.app import create_app
from dicomite.bootstrap import Context, prepare, register_viewer
from dicomite.identity.viewer_client import viewer_app_id
from dicomite.viewer import web
from dicomite.viewer.package import OHIF_APP
from tests.fixtures.stores import sqlite_url, store_settings
from tests.viewer.tarballs import BUILD, INDEX, lay_out

BASE = "https://testserver"


@pytest.fixture
def context(data_dir: Path) -> Iterator[Context]:
    settings = store_settings(
        data_dir, sqlite_url(data_dir), http=False, public_url=BASE, viewer_dir=data_dir / "v"
    )
    prepared = prepare(settings)
    register_viewer(prepared)
    yield prepared
    prepared.store.dispose()


def serving(context: Context) -> TestClient:
    return TestClient(create_app(context.settings), base_url=BASE)


@pytest.fixture
def client(context: Context) -> Iterator[TestClient]:
    """The app of a deployment whose build was installed before it started."""
    lay_out(context.settings.effective_viewer_dir)
    with serving(context) as running:
        yield running


def test_viewer_pages_are_the_build_index(client: TestClient) -> None:
    for path in ("/viewer/", "/viewer/viewer?StudyInstanceUIDs=1.2.3", "/viewer/callback?code=c"):
        page = client.get(path)
        assert page.status_code == 200 and page.content == INDEX, path
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["content-security-policy"] == "frame-ancestors 'self'"
        assert page.headers["referrer-policy"] == "no-referrer"
    moved = client.get("/viewer?x=1", follow_redirects=False)
    assert moved.status_code == 307 and moved.headers["location"] == "/viewer/?x=1"


def test_the_configuration_is_generated_at_both_names(context: Context, client: TestClient) -> None:
    root, under_viewer = client.get("/app-config.js"), client.get("/viewer/app-config.js")
    assert root.status_code == under_viewer.status_code == 200
    assert root.content == under_viewer.content
    assert root.headers["content-type"] == "text/javascript; charset=utf-8"
    config = json.loads(root.text.removeprefix("window.config = ").removesuffix(";\n"))
    assert config["oidc"][0]["client_id"] == viewer_app_id(context.tenant_id)
    assert config["dataSources"][0]["configuration"]["qidoRoot"] == f"{BASE}/dicom/v2"


def test_build_files_are_served_at_the_root_by_their_names(client: TestClient) -> None:
    bundle = client.get("/app.bundle.0123456789abcdef.js")
    assert bundle.content == BUILD["package/dist/app.bundle.0123456789abcdef.js"]
    assert bundle.headers["content-type"] == "text/javascript; charset=utf-8"
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert bundle.headers["x-content-type-options"] == "nosniff"
    assert client.get("/assets/images/a%20b.png").content == b"png"
    assert client.get("/0123456789abcdef.wasm").headers["content-type"] == "application/wasm"
    head = client.head("/assets/favicon.ico")
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/assets/..%2findex.html",
        "/installed.json",
        "/LICENSE",
        "/package.json",
        "/dist/index.html",
        "/assets",
        "/assets/",
        "/INDEX.HTML",
        "/nothing.js",
    ],
)
def test_no_other_name_reaches_a_file(  # dot segments: test_serving.py, sent as they are
    client: TestClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "NotFound", "message": "No such endpoint."}}


def test_only_reads_are_served_and_other_routes_answer_as_before(client: TestClient) -> None:
    refused = client.post("/index.html")
    assert refused.status_code == 405
    assert refused.json()["error"]["code"] == "MethodNotAllowed"
    assert client.delete("/app.bundle.0123456789abcdef.js").status_code == 405
    assert client.get("/", follow_redirects=False).headers["location"] == "/portal/"
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.post("/healthz").status_code == 405  # another route's refusal stays its own
    assert client.post("/elsewhere").status_code == 404


def test_without_a_build_the_viewer_says_how_to_install_it_until_one_appears(
    context: Context,
) -> None:
    with serving(context) as client:
        help_page = client.get("/viewer/")
        assert help_page.status_code == 404
        assert help_page.headers["cache-control"] == "no-store"
        assert "dicomite viewer install" in help_page.text
        assert f"{OHIF_APP.name} {OHIF_APP.version}" in help_page.text
        assert str(context.settings.data_dir) not in help_page.text  # no server paths
        assert client.get("/index.html").status_code == 404
        assert client.get("/viewer/app-config.js").status_code == 200

        lay_out(context.settings.effective_viewer_dir)
        time.sleep(web.LOOK_AGAIN_SECONDS)
        assert client.get("/viewer/").content == INDEX  # no restart
        assert client.get("/index.html").content == INDEX
