"""The real OHIF build (installed into tools/ohif by scripts/test) and a ``dicomite serve``
that serves it, holding two small studies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dicomite.bootstrap import open_context
from dicomite.settings import Settings
from dicomite.viewer.install import installed_folder
from dicomite.viewer.package import OHIF_APP
from tests.fixtures.dicom import token_for
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server, make_server
from tests.viewer.studies import Study

OHIF_DIR = Path(__file__).resolve().parents[2] / "tools" / "ohif"
STUDIES = (Study("Doe^Jane", "P1"), Study("Roe^Richard", "P2"))


@pytest.fixture(scope="session")
def ohif_build() -> Path:
    folder = installed_folder(OHIF_DIR, OHIF_APP)
    if folder is None:
        pytest.fail(
            f"{OHIF_APP.name} {OHIF_APP.version} is not installed in {OHIF_DIR}: scripts/test "
            "installs it (dicomite viewer install --viewer-dir tools/ohif)"
        )
    return folder


@pytest.fixture(scope="module")
def viewer_server(tmp_path_factory: pytest.TempPathFactory, ohif_build: Path) -> Iterator[Server]:
    server = make_server(
        tmp_path_factory.mktemp("viewer"), extra_env={"DICOMITE_VIEWER_DIR": str(OHIF_DIR)}
    )
    server.start()
    yield server
    server.stop()


def app_token(server: Server, *roles: str) -> str:
    context = open_context(Settings(data_dir=server.data_dir, tenant_id=server.tenant_id))
    try:
        app = Admin(context).register(roles=roles)
    finally:
        context.store.dispose()
    assert app.secret is not None
    return token_for(server, app.app_id, app.secret)


@pytest.fixture(scope="module")
def stored(viewer_server: Server) -> tuple[Study, ...]:
    """The two studies, stored through STOW-RS by an app with Dicom.ReadWrite."""
    headers = {
        "Authorization": f"Bearer {app_token(viewer_server, 'Dicom.ReadWrite')}",
        "Content-Type": "application/dicom",
    }
    with viewer_server.client() as client:
        for study in STUDIES:
            for body in study.instances():
                response = client.post("/dicom/v2/studies", content=body, headers=headers)
                assert response.status_code == 200, response.text
    return STUDIES


def reader(server: Server) -> httpx.Client:
    client = server.client()
    client.headers["Authorization"] = f"Bearer {app_token(server, 'Dicom.Read')}"
    return client
