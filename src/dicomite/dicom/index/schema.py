"""The SQL index of studies, series and instances, and the change feed rows written with it.

``INDEXED`` is the one declarative keyword → column table (pynetdicom's ``apps/qrscp/db.py``
habit): the searchable attributes of the Azure DICOM conformance statement, each with its level,
column and matching kind. Person names are stored normalised (case- and accent-folded) for
matching, next to a ``*_words`` column for fuzzy prefix matching of any name part.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select

from dicomite.dicom.index.partitions import Partition
from dicomite.dicom.model import dicomjson
from dicomite.store.compiled import select_rows
from dicomite.store.tables import DicomInstance, DicomInstanceOriginal, DicomSeries, DicomStudy


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

# What QIDO returns per level (conformance statement, "Search Response"): defaults, and the
# additional attributes of ``includefield=all``.
_T = dicomjson.keyword_tag
DEFAULT_TAGS = {
    Level.STUDY: [
        _T(k)
        for k in (
            "StudyDate",
            "AccessionNumber",
            "StudyDescription",
            "ReferringPhysicianName",
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "StudyInstanceUID",
        )
    ],
    Level.SERIES: [
        _T(k)
        for k in (
            "Modality",
            "ManufacturerModelName",
            "SeriesInstanceUID",
            "PerformedProcedureStepStartDate",
        )
    ],
    Level.INSTANCE: [_T("SOPInstanceUID")],
}
ADDITIONAL_TAGS = {
    Level.STUDY: [
        _T(k)
        for k in (
            "SpecificCharacterSet",
            "StudyTime",
            "InstanceAvailability",
            "TimezoneOffsetFromUTC",
            "AnatomicRegionsInStudyCodeSequence",
            "ProcedureCodeSequence",
            "NameOfPhysiciansReadingStudy",
            "AdmittingDiagnosesDescription",
            "ReferencedStudySequence",
            "PatientAge",
            "PatientSize",
            "PatientWeight",
            "Occupation",
            "AdditionalPatientHistory",
            "PatientSex",
            "StudyID",
        )
    ],
    Level.SERIES: [
        _T(k)
        for k in (
            "SpecificCharacterSet",
            "TimezoneOffsetFromUTC",
            "SeriesNumber",
            "Laterality",
            "SeriesDate",
            "SeriesTime",
            "SeriesDescription",
            "PerformedProcedureStepStartTime",
            "RequestAttributesSequence",
        )
    ],
    Level.INSTANCE: [
        _T(k)
        for k in (
            "SpecificCharacterSet",
            "SOPClassUID",
            "InstanceAvailability",
            "TimezoneOffsetFromUTC",
            "InstanceNumber",
            "Rows",
            "Columns",
            "BitsAllocated",
            "NumberOfFrames",
        )
    ],
}
LEVEL_TAGS = {level: DEFAULT_TAGS[level] + ADDITIONAL_TAGS[level] for level in Level}
LEVEL_KEYS = {level: [dicomjson.tag_key(tag) for tag in tags] for level, tags in LEVEL_TAGS.items()}

_NAME_SEPARATORS = re.compile(r"[\^=\s,]+")


@functools.lru_cache(maxsize=4096)  # a study's names recur in each of its instances
def fold(text: str) -> str:
    """Case- and accent-insensitive form (PN matching in the conformance statement)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@functools.lru_cache(maxsize=4096)
def name_words(name: str) -> str:
    """`` word word …``: each name part after a space, so ``LIKE '% jo%'`` is a prefix match."""
    words = [w for w in _NAME_SEPARATORS.split(fold(name)) if w]
    return "".join(f" {word}" for word in words)


@dataclass(frozen=True)
class InstanceFile:
    """An instance's identifiers and its blob."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    number_of_frames: int
    blob_key: str
    size: int


@dataclass(frozen=True)
class StoredInstance(InstanceFile):
    version: str  # changes at every write of the row (ETags)


def find_instances(
    db: Connection,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    *,
    partition: Partition,  # no default: a read without one would reach every partition
    original: bool = False,
) -> list[StoredInstance]:
    """The latest versions of the matching instances; their originals if ``original`` (the
    same, for instances never updated: ``index.originals``)."""
    kind = _ORIGINAL_FILES if original else _FILES
    statement = _matching(kind, series is not None, sop is not None, partition.scoped)
    rows = select_rows(db, statement, _uids(study, series, sop, partition))
    return [StoredInstance(*row) for row in rows]


def metadata_of(
    db: Connection,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    *,
    partition: Partition,  # no default: a read without one would reach every partition
    original: bool = False,
) -> list[tuple[str, str]]:
    """``(version, metadata JSON)`` of the matching instances (their originals if
    ``original``, whose versions differ from the latest's, as ETags must)."""
    kind = _ORIGINAL_METADATA if original else _METADATA
    statement = _matching(kind, series is not None, sop is not None, partition.scoped)
    rows = select_rows(db, statement, _uids(study, series, sop, partition))
    suffix = "-original" if original else ""
    return [(version + suffix, text) for version, text in rows]


_FILES = "files"
_METADATA = "metadata"
_ORIGINAL_FILES = "original files"
_ORIGINAL_METADATA = "original metadata"
_ORIGINAL = DicomInstanceOriginal
_SELECTED: dict[str, tuple[Any, ...]] = {
    _FILES: (
        DicomStudy.study_uid,
        DicomSeries.series_uid,
        DicomInstance.sop_uid,
        DicomInstance.sop_class_uid,
        DicomInstance.transfer_syntax_uid,
        DicomInstance.number_of_frames,
        DicomInstance.blob_key,
        DicomInstance.size,
        DicomInstance.version,
    ),
    _METADATA: (DicomInstance.version, DicomInstance.metadata_json),
    _ORIGINAL_FILES: (
        DicomStudy.study_uid,
        DicomSeries.series_uid,
        DicomInstance.sop_uid,
        DicomInstance.sop_class_uid,
        DicomInstance.transfer_syntax_uid,
        DicomInstance.number_of_frames,
        func.coalesce(_ORIGINAL.blob_key, DicomInstance.blob_key),
        func.coalesce(_ORIGINAL.size, DicomInstance.size),
        DicomInstance.version,
    ),
    _ORIGINAL_METADATA: (
        DicomInstance.version,
        func.coalesce(_ORIGINAL.metadata_json, DicomInstance.metadata_json),
    ),
}


@functools.cache  # eight statements per kind: one object each, so each is compiled once
def _matching(kind: str, by_series: bool, by_sop: bool, by_partition: bool) -> Select[Any]:
    """The ``kind`` columns of the instances of study ``:study`` (and series ``:series``,
    instance ``:sop``, partition ``:partition`` when given), in the order they were stored."""
    query: Select[Any] = (
        select(*_SELECTED[kind])
        .join(DicomSeries, DicomInstance.series_pk == DicomSeries.pk)
        .join(DicomStudy, DicomInstance.study_pk == DicomStudy.pk)
        .where(DicomStudy.study_uid == bindparam("study"))
        .order_by(DicomInstance.pk)
    )
    if kind in (_ORIGINAL_FILES, _ORIGINAL_METADATA):
        query = query.outerjoin(_ORIGINAL, _ORIGINAL.instance_pk == DicomInstance.pk)
    if by_series:
        query = query.where(DicomSeries.series_uid == bindparam("series"))
    if by_sop:
        query = query.where(DicomInstance.sop_uid == bindparam("sop"))
    if by_partition:
        query = query.where(DicomStudy.partition_key == bindparam("partition"))
    return query


def _uids(
    study: str, series: str | None, sop: str | None, partition: Partition
) -> dict[str, str | int | None]:
    return {"study": study, "series": series, "sop": sop, "partition": partition.key}
