"""The original versions of updated instances (Azure DICOM "Update DICOM files": "there are two
versions of the instances that can be retrieved: the original, unmodified instances and the
latest version"; intermediate versions are not kept). The instance row is the latest version;
a row here, made by the first update, is the original: its blob, size and metadata.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, Table, insert, select

from dicomite.store.tables import DicomInstanceOriginal

ORIGINALS = cast(Table, DicomInstanceOriginal.__table__)
# WADO's header asking for the original version ("Update DICOM files", "Retrieve (WADO-RS)").
REQUEST_ORIGINAL = "msdicom-request-original"


def wants_original(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def keep(db: Connection, instance_pk: int, blob_key: str, size: int, metadata_json: str) -> bool:
    """Keep the instance's version about to be replaced as its original, unless it has one
    already; whether it was kept (when not, the replaced blob is an intermediate version)."""
    found = db.scalar(select(ORIGINALS.c.blob_key).where(ORIGINALS.c.instance_pk == instance_pk))
    if found is not None:
        return False
    row = {
        "instance_pk": instance_pk,
        "blob_key": blob_key,
        "size": size,
        "metadata_json": metadata_json,
    }
    db.execute(insert(ORIGINALS).values(**row))
    return True
