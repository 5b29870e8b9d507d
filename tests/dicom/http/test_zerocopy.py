"""WADO-RS bodies of stored files (``dicom.http.zerocopy``: one whole file through the server's
``http.response.pathsend``, several streamed) on a plain-HTTP server: byte-identical, several on
one kept-alive connection, and a client leaving in the middle of a body costs only its own
connection."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from dicomite.bootstrap import open_context
from dicomite.settings import Settings
from tests.dicom.retrieve.test_wado import ANY, parts
from tests.fixtures.dicom import (
    dicom_client,
    make_dataset,
    multipart,
    stow_headers,
    to_bytes,
    token_for,
)
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server, make_server


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A plain-HTTP server of this module's own and a DICOM read-write token for it."""
    running = make_server(tmp_path_factory.mktemp("zerocopy"), http=True)
    running.start()
    context = open_context(Settings(data_dir=running.data_dir, tenant_id=running.tenant_id))
    app = Admin(context).register(roles=("Dicom.ReadWrite",))
    assert app.secret is not None
    yield running, token_for(running, app.app_id, app.secret)
    context.store.dispose()
    running.stop()


def _big(study: str, series: str) -> bytes:
    """About 4 MB: more than a socket buffer takes at once."""
    dataset = make_dataset(study=study, series=series, frames=8)
    dataset.Rows = dataset.Columns = 512
    dataset.PixelData = bytes(range(256)) * (512 * 512 * 2 * 8 // 256)
    return to_bytes(dataset)


def test_bodies_are_the_stored_files(plain: tuple[Server, str]) -> None:
    server, token = plain
    study, series = generate_uid(), generate_uid()
    stored = [to_bytes(make_dataset(study=study, series=series)), _big(study, series)]
    stored.append(to_bytes(make_dataset(study=study)))  # another series
    with dicom_client(server, token, 2) as client:
        _store(client, stored)
        for _ in range(2):  # the same kept-alive connection, body after body
            whole = client.get(f"/studies/{study}", headers=ANY)
            assert whole.headers["transfer-encoding"] == "chunked"
            assert parts(whole) == stored
            assert parts(client.get(f"/studies/{study}/series/{series}", headers=ANY)) == stored[:2]
        sop = make_dataset().SOPInstanceUID  # unknown: 404 as always
        assert client.get(f"/studies/{study}/series/{series}/instances/{sop}").status_code == 404
        big = client.get(
            f"/studies/{study}/series/{series}/instances/{_sop(stored[1])}",
            headers={"Accept": "application/dicom; transfer-syntax=*"},
        )
        assert big.content == stored[1]
        assert client.head(f"/studies/{study}", headers=ANY).content == b""


def test_client_leaving_midway_costs_only_its_connection(plain: tuple[Server, str]) -> None:
    server, token = plain
    study = generate_uid()
    stored = [_big(study, generate_uid()) for _ in range(3)]
    with dicom_client(server, token, 2) as client:
        _store(client, stored)
    request = (
        f"GET /dicom/v2/studies/{study} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\nAccept: {ANY['Accept']}\r\n\r\n"
    ).encode()
    for number in range(6):  # each new connection may reuse the socket number of the last
        with socket.create_connection(("localhost", server.port)) as raw:
            raw.sendall(request)
            if number % 2:  # gone at once, or after the head and a little of the body
                assert raw.recv(1000).startswith(b"HTTP/1.1 200")
    with dicom_client(server, token, 2) as client:
        assert parts(client.get(f"/studies/{study}", headers=ANY)) == stored
    log = Path(server.log_path).read_text() if server.log_path else ""
    assert "Traceback" not in log and "ERROR" not in log


def _store(client: httpx.Client, instances: list[bytes]) -> None:
    response = client.post("/studies", content=multipart(*instances), headers=stow_headers())
    assert response.status_code == 200


def _sop(data: bytes) -> str:
    return str(dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
