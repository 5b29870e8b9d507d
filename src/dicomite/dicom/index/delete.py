"""Delete (non-standard, conformance statement "Delete"): study, series or instance → 204/404.

Index rows go first (one transaction, with a change feed ``delete`` row per instance), then the
blobs: a crash in between leaves blobs without rows, which the orphan sweep removes, never a
row without its blob.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from dicomite.clock import utcnow
from dicomite.dicom.blobs.protocol import BlobStore
from dicomite.dicom.errors import NotFound
from dicomite.dicom.index import schema
from dicomite.dicom.index import write as index_write
from dicomite.dicom.index.partitions import UNPARTITIONED, Partition
from dicomite.store.db import Store
from dicomite.store.tables import DicomInstance, DicomSeries, DicomStudy


def delete_resource(
    store: Store,
    blobs: BlobStore,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    partition: Partition = UNPARTITIONED,
) -> None:
    now = utcnow()
    with store.transaction(write=True) as db:
        found = schema.find_instances(db, study, series, sop, partition=partition)
        if not found:
            raise NotFound(_missing(study, series, sop))
        # Locked (PostgreSQL) as STOW locks it, so that the ModalitiesInStudy joined below
        # reads every series committed before, a concurrent STOW's too.
        study_pk = db.execute(
            select(DicomStudy.pk)
            .where(DicomStudy.partition_key == partition.key, DicomStudy.study_uid == study)
            .with_for_update()
        ).scalar_one()
        deleted = [(i.study_uid, i.series_uid, i.sop_uid) for i in found]
        index_write.record_deletes(db, deleted, now, partition)
        rows = delete(DicomInstance).where(DicomInstance.study_pk == study_pk)
        if series is not None:
            series_pk = select(DicomSeries.pk).where(
                DicomSeries.study_pk == study_pk, DicomSeries.series_uid == series
            )
            rows = rows.where(DicomInstance.series_pk.in_(series_pk))
        if sop is not None:
            rows = rows.where(DicomInstance.sop_uid == sop)
        # every version goes ("Update DICOM files", "Delete"); the originals' rows cascade
        first = schema.find_instances(db, study, series, sop, partition=partition, original=True)
        db.execute(rows)
        _drop_empty(db)
        index_write.join_modalities(db, [study_pk])  # fewer series now, or no study left
    for key in dict.fromkeys(instance.blob_key for instance in found + first):
        blobs.delete(key)


def _drop_empty(db: Connection) -> None:
    used_series = select(DicomInstance.series_pk).distinct()
    db.execute(delete(DicomSeries).where(DicomSeries.pk.not_in(used_series)))
    used_studies = select(DicomSeries.study_pk).distinct()
    db.execute(delete(DicomStudy).where(DicomStudy.pk.not_in(used_studies)))


def _missing(study: str, series: str | None, sop: str | None) -> str:
    if sop is not None:
        return f"The instance {sop} was not found in series {series} of study {study}."
    if series is not None:
        return f"The series {series} was not found in study {study}."
    return f"The study {study} was not found."
