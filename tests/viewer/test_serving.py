"""The viewer on a running ``dicomite serve`` with the real OHIF build: what its index.html
loads is served from the site root, paths that try to leave the build are unknown, the built-in
viewer app is listed like any app, and OHIF's own DICOMweb requests (the exact queries and
Accept headers of its DICOMweb data source) get what it reads."""

from __future__ import annotations

import re
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from dicomite.identity.viewer_client import viewer_app_id
from tests.fixtures.server import Server, make_server
from tests.viewer.conftest import reader
from tests.viewer.studies import SLICES, Study

# What OHIF 3.13's DICOMweb data source sends (extensions/default/src/DicomWebDataSource).
STUDY_FIELDS = "00081030,00080060,00080090,00100030"
SERIES_FIELDS = "00080021,00080031,0008103E,00200011"
FRAME_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"


def test_what_the_index_page_loads_is_served_from_the_root(
    viewer_server: Server, ohif_build: Path
) -> None:
    index = (ohif_build / "dist" / "index.html").read_text()
    loaded = set(re.findall(r'(?:src|href)="(/[^"]*)"', index))
    assert "/app-config.js" in loaded and any(p.startswith("/app.bundle.") for p in loaded)
    with viewer_server.client() as client:
        for path in sorted(loaded):
            assert client.head(path).status_code == 200, path
        page = client.get("/viewer/")
    assert page.status_code == 200 and page.text == index  # served as built, never edited


def _raw_get(server: Server, target: str) -> bytes:
    """The status line for a request line sent exactly as written: no client tidies its dot
    segments."""
    context = ssl.create_default_context(cafile=server.ca_file)
    request = f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    plain = socket.create_connection(("localhost", server.port), timeout=30)
    with context.wrap_socket(plain, server_hostname="localhost") as sock:
        sock.sendall(request.encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received.split(b"\r\n", 1)[0]


@pytest.mark.parametrize(
    "target",
    [
        "/assets/../index.html",
        "/assets/%2e%2e/index.html",
        "/assets/..%2f..%2finstalled.json",
        "/../installed.json",
        "/%2e%2e/LICENSE",
        "//index.html",
        "/./index.html",
        "/dist/index.html",
        "/index.html%00.js",
    ],
)
def test_paths_that_try_to_leave_the_build_are_unknown(viewer_server: Server, target: str) -> None:
    assert _raw_get(viewer_server, target) == b"HTTP/1.1 404 Not Found"


def test_the_banner_names_the_viewer(viewer_server: Server) -> None:
    assert f"  Viewer:            {viewer_server.base_url}/viewer/" in viewer_server.log_text()


def test_the_viewer_app_is_an_app_like_any_other(viewer_server: Server) -> None:
    app_id = viewer_app_id(viewer_server.tenant_id)
    with viewer_server.client() as client:
        config = client.get("/viewer/app-config.js").text
        headers = {"Authorization": f"Bearer {viewer_server.graph_token()}"}
        app = client.get(f"/graph/v1.0/applications(appId='{app_id}')", headers=headers).json()
    assert f'"client_id": "{app_id}"' in config
    assert app["displayName"] == "DICOM viewer"
    assert app["spa"]["redirectUris"] == [f"{viewer_server.base_url}/viewer/callback"]
    listed = viewer_server.cli("app", "list", "--json").stdout
    assert app_id in listed


def _value(dataset: dict[str, Any], tag: str) -> Any:
    return dataset[tag]["Value"][0]


def test_the_study_list_search_finds_by_wildcard(
    viewer_server: Server, stored: tuple[Study, ...]
) -> None:
    query = {
        "PatientName": "*ich*",  # what OHIF sends for "ich" typed in the Patient filter
        "limit": "101",
        "offset": "0",
        "fuzzymatching": "false",
        "includefield": STUDY_FIELDS,
    }
    with reader(viewer_server) as client:
        [found] = client.get("/dicom/v2/studies", params=query).json()
        everyone = client.get("/dicom/v2/studies", params={**query, "PatientName": "*e*"})
        by_id = client.get("/dicom/v2/studies", params={"00100020": "*P2*", "limit": "101"})
    assert _value(found, "0020000D") == stored[1].uid
    assert _value(found, "00100010") == {"Alphabetic": "Roe^Richard"}
    assert _value(found, "00080020") == "20240115" and _value(found, "00081030") == "Chest CT"
    assert found["00080061"]["Value"] == ["CT"]  # ModalitiesInStudy, without includefield
    assert len(everyone.json()) == 2
    assert [_value(s, "0020000D") for s in by_id.json()] == [stored[1].uid]


# What cornerstone3D reads of an image instance besides pixels.
IMAGE_TAGS = ("00280010", "00280011", "00280100", "00280103", "00280004", "00200032", "00200037")
IMAGE_TAGS += ("00280030", "00281052", "00281053", "00080016", "00080018")


@pytest.mark.parametrize(
    ("index", "syntax"), [(0, "1.2.840.10008.1.2.1"), (1, "1.2.840.10008.1.2.5")]
)
def test_series_metadata_and_frames_are_what_cornerstone_reads(
    viewer_server: Server, stored: tuple[Study, ...], index: int, syntax: str
) -> None:
    """Frames come as stored (``transfer-syntax=*``), the part naming its transfer syntax, which
    cornerstone decodes by: native, and RLE Lossless."""
    study = stored[0]
    base = f"/dicom/v2/studies/{study.uid}/series/{study.series[index]}"
    with reader(viewer_server) as client:
        series = client.get(
            f"/dicom/v2/studies/{study.uid}/series", params={"includefield": SERIES_FIELDS}
        ).json()
        instances = client.get(f"{base}/metadata").json()
        frame = client.get(
            f"{base}/instances/{_value(instances[0], '00080018')}/frames/1",
            headers={"Accept": FRAME_ACCEPT},
        )
    assert sorted(_value(s, "0020000E") for s in series) == sorted(study.series)
    assert {_value(s, "00200011") for s in series} == {1, 2}
    assert len(instances) == SLICES
    assert all(tag in instances[0] for tag in IMAGE_TAGS)
    assert frame.status_code == 200
    assert frame.headers["content-type"].startswith("multipart/related;")
    part_head = frame.content.split(b"\r\n\r\n", 1)[0]
    assert f"transfer-syntax={syntax}".encode() in part_head


def test_an_address_where_sign_in_cannot_work_is_told_and_served_anyway(tmp_path: Path) -> None:
    server = make_server(
        tmp_path, http=True, extra_args=["--public-url", "http://dicom.example.org"]
    )
    server.start()
    try:
        with server.client() as client:
            config = client.get("/viewer/app-config.js")
    finally:
        server.stop()
    assert config.status_code == 200 and "http://dicom.example.org/dicom/v2" in config.text
    assert "Viewer:            sign-in cannot work at this address:" in server.log_text()
    assert "http://dicom.example.org/viewer/callback" in server.log_text()
