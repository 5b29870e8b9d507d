"""An instance whose stored file is gone (deleted meanwhile, or lost by the storage) answers
404 with a DICOM error body, never 500; its index entry is left as it is."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from dicomite.bootstrap import open_context
from dicomite.services import open_blob_store
from dicomite.settings import Settings
from dicomite.store.tables import DicomInstance
from tests.fixtures.dicom import make_dataset, multipart, stow_headers, to_bytes
from tests.fixtures.server import Server

ANY = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}


@pytest.fixture
def lost(server: Server, writer: httpx.Client) -> str:
    """A stored instance's path (the one instance of its study), its stored file deleted behind
    the service's back."""
    dataset = make_dataset(frames=2)
    response = writer.post("/studies", content=multipart(to_bytes(dataset)), headers=stow_headers())
    assert response.status_code == 200, response.text
    url = server.env.get("DICOMITE_DATABASE_URL")
    settings = Settings(
        data_dir=server.data_dir,
        tenant_id=server.tenant_id,
        database_url=url,
        blob_url=server.env.get("DICOMITE_BLOB_URL"),
    )
    context = open_context(settings)
    try:
        with context.store.transaction() as db:
            key = db.execute(
                select(DicomInstance.blob_key).where(
                    DicomInstance.sop_uid == dataset.SOPInstanceUID
                )
            ).scalar_one()
    finally:
        context.store.dispose()
    blobs = open_blob_store(settings.blob_dir, settings.blob_url)
    blobs.delete(key)
    close = getattr(blobs, "close", None)
    if close is not None:
        close()
    return (
        f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}"
    )


def _study(instance: str) -> str:
    return instance.split("/series/")[0]


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        (str, "application/dicom; transfer-syntax=*"),  # the file itself (zero copy)
        (str, ANY["Accept"]),  # streamed as a part
        (_study, ANY["Accept"]),  # the study: the first instance's file is gone
        (lambda p: f"{p}/frames/1", 'multipart/related; type="application/octet-stream"'),
        (lambda p: f"{p}/rendered", "image/jpeg"),
        (lambda p: f"{p}/frames/1/rendered", "image/png"),
        (lambda p: f"{p}/thumbnail", "image/jpeg"),
    ],
    ids=["file", "part", "study", "frames", "rendered", "frame-rendered", "thumbnail"],
)
def test_a_retrieve_of_a_lost_instance_is_404(
    writer: httpx.Client, lost: str, path: Callable[[str], str], accept: str
) -> None:
    got = writer.get(path(lost), headers={"Accept": accept})
    assert got.status_code == 404, got.text
    assert got.text == "The stored file of the requested instance is missing."
    assert writer.get(f"{_study(lost)}/metadata").status_code == 200  # the index is untouched
