"""The SQL index of studies, series and instances, and the change feed rows written with it.

``INDEXED`` is the one declarative keyword → column table (pynetdicom's ``apps/qrscp/db.py``
habit): the searchable attributes of the Azure DICOM conformance statement, each with its level,
column and matching kind. Person names are stored normalised (case- and accent-folded) for
matching, next to a ``*_words`` column for fuzzy prefix matching of any name part.
"""

from __future__ import annotations

import enum
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from dicomite.dicom import dicomjson
from dicomite.dicom.dicomjson import JsonDataset
from dicomite.store.tables import DicomChange, DicomInstance, DicomSeries, DicomStudy


class Level(enum.IntEnum):
    STUDY = 1
    SERIES = 2
    INSTANCE = 3


class Kind(enum.Enum):
    UID = "uid"
    DATE = "date"
    PERSON = "person"
    TEXT = "text"  # stored lower-cased: matching is case-insensitive and can use the index
    CODE = "code"  # CS values are upper case by definition (PS3.5 §6.2); matched upper-cased


@dataclass(frozen=True)
class Indexed:
    keyword: str
    level: Level
    column: str
    kind: Kind
    max_length: int

    @property
    def tag(self) -> int:
        return dicomjson.keyword_tag(self.keyword)


INDEXED: tuple[Indexed, ...] = (
    Indexed("StudyInstanceUID", Level.STUDY, "study_uid", Kind.UID, 64),
    Indexed("PatientName", Level.STUDY, "patient_name", Kind.PERSON, 324),
    Indexed("PatientID", Level.STUDY, "patient_id", Kind.TEXT, 64),
    Indexed("PatientBirthDate", Level.STUDY, "patient_birth_date", Kind.DATE, 8),
    Indexed("AccessionNumber", Level.STUDY, "accession_number", Kind.TEXT, 16),
    Indexed("ReferringPhysicianName", Level.STUDY, "referring_physician_name", Kind.PERSON, 324),
    Indexed("StudyDate", Level.STUDY, "study_date", Kind.DATE, 8),
    Indexed("StudyDescription", Level.STUDY, "study_description", Kind.TEXT, 64),
    Indexed("SeriesInstanceUID", Level.SERIES, "series_uid", Kind.UID, 64),
    Indexed("Modality", Level.SERIES, "modality", Kind.CODE, 16),
    Indexed(
        "PerformedProcedureStepStartDate",
        Level.SERIES,
        "performed_procedure_step_start_date",
        Kind.DATE,
        8,
    ),
    Indexed("ManufacturerModelName", Level.SERIES, "manufacturer_model_name", Kind.TEXT, 64),
    Indexed("SOPInstanceUID", Level.INSTANCE, "sop_uid", Kind.UID, 64),
)
BY_KEYWORD = {attribute.keyword: attribute for attribute in INDEXED}
BY_TAG = {attribute.tag: attribute for attribute in INDEXED}
MODEL = {Level.STUDY: DicomStudy, Level.SERIES: DicomSeries, Level.INSTANCE: DicomInstance}

# What QIDO returns per level (conformance statement, "Search Response"): defaults, and the
# additional attributes of ``includefield=all``.
_T = dicomjson.keyword_tag
DEFAULT_TAGS = {
    Level.STUDY: [_T(k) for k in (
        "StudyDate", "AccessionNumber", "StudyDescription", "ReferringPhysicianName",
        "PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID")],
    Level.SERIES: [_T(k) for k in (
        "Modality", "ManufacturerModelName", "SeriesInstanceUID",
        "PerformedProcedureStepStartDate")],
    Level.INSTANCE: [_T("SOPInstanceUID")],
}  # fmt: skip
ADDITIONAL_TAGS = {
    Level.STUDY: [_T(k) for k in (
        "SpecificCharacterSet", "StudyTime", "InstanceAvailability", "TimezoneOffsetFromUTC",
        "AnatomicRegionsInStudyCodeSequence", "ProcedureCodeSequence",
        "NameOfPhysiciansReadingStudy", "AdmittingDiagnosesDescription",
        "ReferencedStudySequence", "PatientAge", "PatientSize", "PatientWeight", "Occupation",
        "AdditionalPatientHistory", "PatientSex", "StudyID")],
    Level.SERIES: [_T(k) for k in (
        "SpecificCharacterSet", "TimezoneOffsetFromUTC", "SeriesNumber", "Laterality",
        "SeriesDate", "SeriesTime", "SeriesDescription", "PerformedProcedureStepStartTime",
        "RequestAttributesSequence")],
    Level.INSTANCE: [_T(k) for k in (
        "SpecificCharacterSet", "SOPClassUID", "InstanceAvailability", "TimezoneOffsetFromUTC",
        "InstanceNumber", "Rows", "Columns", "BitsAllocated", "NumberOfFrames")],
}  # fmt: skip
LEVEL_TAGS = {level: DEFAULT_TAGS[level] + ADDITIONAL_TAGS[level] for level in Level}

_NAME_SEPARATORS = re.compile(r"[\^=\s,]+")


def fold(text: str) -> str:
    """Case- and accent-insensitive form (PN matching in the conformance statement)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def name_words(name: str) -> str:
    """`` word word …``: each name part after a space, so ``LIKE '% jo%'`` is a prefix match."""
    words = [w for w in _NAME_SEPARATORS.split(fold(name)) if w]
    return "".join(f" {word}" for word in words)


@dataclass
class NewInstance:
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    number_of_frames: int
    blob_key: str
    size: int
    metadata: JsonDataset
    # Column values of searchable attributes that passed validation (others stay NULL).
    columns: dict[str, str]

    def level_columns(self, level: Level) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for attribute in INDEXED:
            if attribute.level != level or attribute.kind is Kind.UID:
                continue
            value = self.columns.get(attribute.column)
            if attribute.kind is Kind.PERSON:
                values[f"{attribute.column}_words"] = name_words(value) if value else None
                value = fold(value) if value else None
            elif attribute.kind is Kind.TEXT:
                value = value.lower() if value else None
            values[attribute.column] = value
        return values

    def attributes(self, level: Level) -> str:
        return dicomjson.dumps(dicomjson.subset(self.metadata, LEVEL_TAGS[level]))


class Duplicate(Exception):
    """The instance is already stored and the request does not replace it."""


class Known:
    """Primary keys of the studies and series already looked up or created in one write
    transaction, so that the instances of one request find them without a query."""

    def __init__(self) -> None:
        self.studies: dict[str, int] = {}
        self.series: dict[tuple[str, str], int] = {}

    def clear(self) -> None:
        """After a rolled back savepoint: rows it added are gone."""
        self.studies.clear()
        self.series.clear()


_STUDIES = cast(Table, DicomStudy.__table__)
_SERIES = cast(Table, DicomSeries.__table__)
_INSTANCES = cast(Table, DicomInstance.__table__)
_CHANGES = cast(Table, DicomChange.__table__)
# Built once: values come as execute() parameters, so each runs from SQLAlchemy's cache.
_FIND_STUDY = select(_STUDIES.c.pk).where(_STUDIES.c.study_uid == bindparam("b_uid"))
_FIND_SERIES = select(_SERIES.c.pk).where(
    _SERIES.c.study_pk == bindparam("b_study"), _SERIES.c.series_uid == bindparam("b_uid")
)
_FIND_INSTANCE = select(_INSTANCES.c.pk, _INSTANCES.c.blob_key).where(
    _INSTANCES.c.series_pk == bindparam("b_series"), _INSTANCES.c.sop_uid == bindparam("b_uid")
)
_UPDATE_STUDY = update(_STUDIES).where(_STUDIES.c.pk == bindparam("b_pk"))
_UPDATE_SERIES = update(_SERIES).where(_SERIES.c.pk == bindparam("b_pk"))
_UPDATE_INSTANCE = update(_INSTANCES).where(_INSTANCES.c.pk == bindparam("b_pk"))


def store_instance(
    session: Session, new: NewInstance, now: datetime, *, replace: bool, known: Known | None = None
) -> str | None:
    """Index one stored blob; returns the blob key a replaced instance leaves behind.

    Core statements (no unit of work): a handful of statements per instance, and none to find
    a study or series already met in the same transaction (``known``)."""
    known = known if known is not None else Known()
    study_pk = known.studies.get(new.study_uid)
    if study_pk is None:
        study_pk = session.execute(_FIND_STUDY, {"b_uid": new.study_uid}).scalar()
    series_key = (new.study_uid, new.series_uid)
    series_pk = known.series.get(series_key)
    if series_pk is None and study_pk is not None:
        series_pk = session.execute(
            _FIND_SERIES, {"b_study": study_pk, "b_uid": new.series_uid}
        ).scalar()
    instance: Any = None
    if series_pk is not None:
        instance = session.execute(
            _FIND_INSTANCE, {"b_series": series_pk, "b_uid": new.sop_uid}
        ).first()
    if instance is not None and not replace:
        raise Duplicate()
    # The latest instance wins (conformance statement, QIDO "Additional Notes").
    study_values = new.level_columns(Level.STUDY)
    study_values.update(attributes=new.attributes(Level.STUDY), updated_at=now)
    if study_pk is None:
        study_values["study_uid"] = new.study_uid
        study_pk = _inserted(session.execute(insert(_STUDIES), study_values))
    else:
        session.execute(_UPDATE_STUDY, {"b_pk": study_pk, **study_values})
    series_values = new.level_columns(Level.SERIES)
    series_values.update(attributes=new.attributes(Level.SERIES), updated_at=now)
    if series_pk is None:
        series_values.update(study_pk=study_pk, series_uid=new.series_uid)
        series_pk = _inserted(session.execute(insert(_SERIES), series_values))
    else:
        session.execute(_UPDATE_SERIES, {"b_pk": series_pk, **series_values})
    known.studies[new.study_uid] = study_pk
    known.series[series_key] = series_pk
    values = {
        "sop_class_uid": new.sop_class_uid,
        "transfer_syntax_uid": new.transfer_syntax_uid,
        "number_of_frames": new.number_of_frames,
        "blob_key": new.blob_key,
        "size": new.size,
        "version": uuid.uuid4().hex,
        "attributes": new.attributes(Level.INSTANCE),
        "metadata_json": dicomjson.dumps(new.metadata),
        "created_at": now,
    }
    replaced: str | None = None
    if instance is None:
        values.update(study_pk=study_pk, series_pk=series_pk, sop_uid=new.sop_uid)
        session.execute(insert(_INSTANCES), values)
    else:
        replaced = instance.blob_key
        _mark(session, new.study_uid, new.series_uid, new.sop_uid, "replaced")
        session.execute(_UPDATE_INSTANCE, {"b_pk": instance.pk, **values})
    session.execute(
        insert(_CHANGES),
        {"timestamp": now, "action": "create", "state": "current", "study_uid": new.study_uid,
         "series_uid": new.series_uid, "sop_uid": new.sop_uid},
    )  # fmt: skip
    return replaced


def _inserted(result: Any) -> int:
    """The primary key of the row a Core INSERT added."""
    key = cast(CursorResult[Any], result).inserted_primary_key
    assert key is not None
    return int(key[0])


def record_change(
    session: Session, action: str, study: str, series: str, sop: str, now: datetime
) -> None:
    state = "current" if action == "create" else "deleted"
    if action == "delete":
        _mark(session, study, series, sop, "deleted")
    session.add(DicomChange(
        timestamp=now, action=action, state=state, study_uid=study, series_uid=series, sop_uid=sop,
    ))  # fmt: skip


def _mark(session: Session, study: str, series: str, sop: str, state: str) -> None:
    session.execute(
        update(DicomChange)
        .where(DicomChange.sop_uid == sop, DicomChange.series_uid == series,
               DicomChange.study_uid == study, DicomChange.state == "current")
        .values(state=state)
    )  # fmt: skip


@dataclass(frozen=True)
class StoredInstance:
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    number_of_frames: int
    blob_key: str
    size: int
    version: str


def find_instances(
    session: Session, study: str, series: str | None = None, sop: str | None = None
) -> list[StoredInstance]:
    query = (
        select(DicomStudy.study_uid, DicomSeries.series_uid, DicomInstance.sop_uid,
               DicomInstance.sop_class_uid, DicomInstance.transfer_syntax_uid,
               DicomInstance.number_of_frames, DicomInstance.blob_key, DicomInstance.size,
               DicomInstance.version)
        .join(DicomSeries, DicomInstance.series_pk == DicomSeries.pk)
        .join(DicomStudy, DicomInstance.study_pk == DicomStudy.pk)
        .where(DicomStudy.study_uid == study)
        .order_by(DicomInstance.pk)
    )  # fmt: skip
    if series is not None:
        query = query.where(DicomSeries.series_uid == series)
    if sop is not None:
        query = query.where(DicomInstance.sop_uid == sop)
    return [StoredInstance(*row) for row in session.execute(query)]


def metadata_of(
    session: Session, study: str, series: str | None = None, sop: str | None = None
) -> list[tuple[str, str]]:
    """``(version, metadata JSON)`` of the matching instances."""
    query = (
        select(DicomInstance.version, DicomInstance.metadata_json)
        .join(DicomSeries, DicomInstance.series_pk == DicomSeries.pk)
        .join(DicomStudy, DicomInstance.study_pk == DicomStudy.pk)
        .where(DicomStudy.study_uid == study)
        .order_by(DicomInstance.pk)
    )
    if series is not None:
        query = query.where(DicomSeries.series_uid == series)
    if sop is not None:
        query = query.where(DicomInstance.sop_uid == sop)
    return [(version, text) for version, text in session.execute(query)]
