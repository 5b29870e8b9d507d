"""The portal's DICOM pages on a deployment with data partitions: they work in
``Microsoft.Default`` (where their uploads go) and show nothing of other partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, literal, select

from dicomite.bootstrap import Context, prepare
from dicomite.clock import utcnow
from dicomite.store.tables import DicomPartition, DicomStudy
from tests.fixtures.dicom import make_dataset, to_bytes
from tests.fixtures.stores import sqlite_url, store_settings
from tests.portal.conftest import PortalClient
from tests.portal.test_dicom_pages import STUDIES, store


@pytest.fixture
def portal_context(data_dir: Path) -> Iterator[Context]:
    settings = store_settings(
        data_dir,
        sqlite_url(data_dir),
        http=False,
        public_url="https://testserver",
        data_partitions=True,
    )
    context = prepare(settings)
    yield context
    context.store.dispose()


def test_the_pages_show_microsoft_default_only(
    portal_context: Context, signed_in: Callable[[str], PortalClient]
) -> None:
    owner = signed_in("owner")
    dataset = make_dataset(PatientID="IN-DEFAULT")
    store(owner, to_bytes(dataset))
    study = dataset.StudyInstanceUID
    with portal_context.store.transaction(write=True) as db:
        assert db.scalar(select(DicomStudy.partition_key)) == 1
        db.execute(insert(DicomPartition).values(key=2, name="other", created_at=utcnow()))
        copied = [c for c in DicomStudy.__table__.columns if c.name not in ("pk", "partition_key")]
        copy = select(*copied, literal(2)).where(DicomStudy.study_uid == study)
        names = [c.name for c in copied] + ["partition_key"]
        db.execute(insert(DicomStudy).from_select(names, copy))
    listed = owner.get(STUDIES).text
    assert listed.count(f'/portal/dicom/studies/{study}"') == 1
    assert owner.get(f"{STUDIES}/{study}").status_code == 200
