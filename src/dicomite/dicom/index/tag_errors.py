"""Indexing errors of extended query tags: the instances a reindex could not index on a tag
(Azure's "Extended Query Tag Error": the instance's UIDs, when, and why). A tag with errors has
its queries disabled by the reindex that found them; an administrator may enable them again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update

from dicomite.dicom.index.extended_tags import DISABLED, ERRORS, TAGS
from dicomite.store.tables import DicomInstance, DicomSeries, DicomStudy

_INSTANCES = cast(Table, DicomInstance.__table__)
_SERIES = cast(Table, DicomSeries.__table__)
_STUDIES = cast(Table, DicomStudy.__table__)
_CLEAR = delete(ERRORS).where(
    ERRORS.c.tag_key.in_(bindparam("keys", expanding=True)),
    ERRORS.c.instance_pk.in_(bindparam("pks", expanding=True)),
)

# An error found: the tag's key, the instance's key, the message.
Found = tuple[int, int, str]


def record(
    db: Connection, keys: Sequence[int], pks: Sequence[int], found: Sequence[Found], now: datetime
) -> None:
    """The errors of tags ``keys`` at instances ``pks`` are now ``found``; tags with errors
    have their queries disabled (Azure: "Tag query status")."""
    if keys and pks:
        db.execute(_CLEAR, {"keys": list(keys), "pks": list(pks)})
    if not found:
        return
    rows = [
        {"tag_key": key, "instance_pk": pk, "message": message[:512], "created_at": now}
        for key, pk, message in found
    ]
    db.execute(insert(ERRORS), rows)
    failing = sorted({key for key, _, _ in found})
    db.execute(update(TAGS).where(TAGS.c.key.in_(failing)).values(query_status=DISABLED))


def errors_of(db: Connection, key: int, limit: int, offset: int) -> list[dict[str, Any]]:
    """A page of the tag's errors, oldest first, as the service answers them."""
    statement = (
        select(
            _STUDIES.c.study_uid,
            _SERIES.c.series_uid,
            _INSTANCES.c.sop_uid,
            ERRORS.c.created_at,
            ERRORS.c.message,
        )
        .select_from(
            ERRORS.join(_INSTANCES, ERRORS.c.instance_pk == _INSTANCES.c.pk)
            .join(_SERIES, _INSTANCES.c.series_pk == _SERIES.c.pk)
            .join(_STUDIES, _INSTANCES.c.study_pk == _STUDIES.c.pk)
        )
        .where(ERRORS.c.tag_key == key)
        .order_by(ERRORS.c.created_at, ERRORS.c.instance_pk)
        .limit(limit)
        .offset(offset)
    )
    return [
        {
            "studyInstanceUid": study,
            "seriesInstanceUid": series,
            "sopInstanceUid": sop,
            "createdTime": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "errorMessage": message,
        }
        for study, series, sop, created, message in db.execute(statement)
    ]
