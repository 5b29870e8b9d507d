"""The change feed (non-standard; Azure DICOM "Change Feed"): ``/changefeed`` and ``/latest``.

v1 pages by sequence: ``offset`` is the sequence to start after, ``limit`` 1 to 100 (default 10).
v2 adds a time window: ``startTime``/``endTime`` (ISO 8601), ``offset`` counts skipped entries
and ``limit`` is 1 to 200 (default 100). ``includemetadata`` (default true) adds the instance's
current metadata when it still exists. On a deployment with data partitions each entry names its
partition (``PartitionName``, as the ``ChangeFeedEntry`` of Microsoft's DICOM client).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Select, Table, select

from dicomite.dicom.errors import BadRequest
from dicomite.dicom.model import dicomjson
from dicomite.store.tables import (
    DicomChange,
    DicomInstance,
    DicomPartition,
    DicomSeries,
    DicomStudy,
)

LIMITS = {1: (10, 100), 2: (100, 200)}
_CHANGES = cast(Table, DicomChange.__table__)


def read_feed(
    db: Connection, params: dict[str, str], version: int, *, partitioned: bool = False
) -> list[dict[str, Any]]:
    default, maximum = LIMITS[version]
    limit = _integer(params, "limit", default, 1, maximum)
    offset = _integer(params, "offset", 0, 0, 2**62)
    query = _changes(partitioned).order_by(_CHANGES.c.sequence)
    if version == 1:
        query = query.where(_CHANGES.c.sequence > offset)
    else:
        start, end = _time(params, "starttime"), _time(params, "endtime")
        if start is not None:
            query = query.where(_CHANGES.c.timestamp >= start)
        if end is not None:
            query = query.where(_CHANGES.c.timestamp < end)
        query = query.offset(offset)
    changes = db.execute(query.limit(limit)).all()
    with_metadata = _boolean(params, "includemetadata")
    return [_entry(db, change, with_metadata, partitioned) for change in changes]


def latest(
    db: Connection, params: dict[str, str], *, partitioned: bool = False
) -> dict[str, Any] | None:
    query = _changes(partitioned).order_by(_CHANGES.c.sequence.desc()).limit(1)
    change = db.execute(query).first()
    if change is None:
        return None
    return _entry(db, change, _boolean(params, "includemetadata"), partitioned)


def _changes(partitioned: bool) -> Select[Any]:
    if not partitioned:
        return select(_CHANGES)
    return select(_CHANGES, DicomPartition.name.label("partition_name")).join(
        DicomPartition, DicomPartition.key == _CHANGES.c.partition_key
    )


def _entry(
    db: Connection, change: Row[Any], with_metadata: bool, partitioned: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Sequence": change.sequence,
        **({"PartitionName": change.partition_name} if partitioned else {}),
        "StudyInstanceUid": change.study_uid,
        "SeriesInstanceUid": change.series_uid,
        "SopInstanceUid": change.sop_uid,
        "Action": change.action,
        "Timestamp": change.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "State": change.state,
    }
    if with_metadata:
        entry["Metadata"] = _metadata(db, change) if change.state == "current" else None
    return entry


def _metadata(db: Connection, change: Row[Any]) -> Any:
    text = db.scalar(
        select(DicomInstance.metadata_json)
        .join(DicomSeries, DicomInstance.series_pk == DicomSeries.pk)
        .join(DicomStudy, DicomInstance.study_pk == DicomStudy.pk)
        .where(
            DicomStudy.partition_key == change.partition_key,
            DicomStudy.study_uid == change.study_uid,
            DicomSeries.series_uid == change.series_uid,
            DicomInstance.sop_uid == change.sop_uid,
        )
    )
    return dicomjson.decode(text) if text else None


def _integer(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"The parameter '{name}' must be an integer.") from None
    if not low <= value <= high:
        raise BadRequest(f"The parameter '{name}' must be between {low} and {high}.")
    return value


def _boolean(params: dict[str, str], name: str) -> bool:
    raw = params.get(name, "true").lower()
    if raw not in ("true", "false"):
        raise BadRequest(f"The parameter '{name}' must be true or false.")
    return raw == "true"


def _time(params: dict[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"The parameter '{name}' must be an ISO 8601 date and time.") from None
    if moment.tzinfo is None:
        raise BadRequest(f"The parameter '{name}' needs a time zone (e.g. Z).")
    return moment
