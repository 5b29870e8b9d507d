"""QIDO-RS (PS3.18 §10.6): search studies, series and instances, as the Azure DICOM
conformance statement describes (attributes per level, matching kinds, paging, 204 past the end).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.orm import Session

from dicomite.dicom import dicomjson
from dicomite.dicom.errors import BadRequest
from dicomite.dicom.index import (
    ADDITIONAL_TAGS,
    BY_KEYWORD,
    DEFAULT_TAGS,
    MODEL,
    Indexed,
    Kind,
    Level,
    fold,
    name_words,
)
from dicomite.store.tables import DicomInstance, DicomSeries, DicomStudy

MAX_LIMIT, DEFAULT_LIMIT = 200, 100
_T = dicomjson.keyword_tag
MODALITIES_IN_STUDY = _T("ModalitiesInStudy")
STUDY_SERIES_COUNT = _T("NumberOfStudyRelatedSeries")
STUDY_INSTANCE_COUNT = _T("NumberOfStudyRelatedInstances")
SERIES_INSTANCE_COUNT = _T("NumberOfSeriesRelatedInstances")
COMPUTED = {Level.STUDY: [MODALITIES_IN_STUDY, STUDY_SERIES_COUNT, STUDY_INSTANCE_COUNT],
            Level.SERIES: [SERIES_INSTANCE_COUNT], Level.INSTANCE: []}  # fmt: skip
_DATE = re.compile(r"^\d{8}$")


@dataclass(frozen=True)
class Scope:
    """What is searched: a level, within an optional study and series (from the URL)."""

    level: Level
    study: str | None = None
    series: str | None = None

    def searchable(self) -> set[str]:
        """The conformance statement's "Searchable Attributes" table, per resource."""
        nested = self.study is not None
        levels = [lv for lv in Level if lv <= self.level]
        if nested:
            levels = [lv for lv in levels if lv > Level.STUDY]
        if self.series is not None:
            levels = [Level.INSTANCE]
        names = {a.keyword for a in BY_KEYWORD.values() if a.level in levels}
        if Level.STUDY in levels:
            names.add("ModalitiesInStudy")
        return names

    def returned_levels(self) -> list[Level]:
        if self.study is None:
            return [lv for lv in Level if lv <= self.level]
        if self.level == Level.INSTANCE and self.series is None:
            return [Level.SERIES, Level.INSTANCE]
        return [self.level]


@dataclass
class Query:
    filters: dict[str, str] = field(default_factory=dict)
    include: set[int] = field(default_factory=set)
    include_all: bool = False
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    fuzzy: bool = False


def parse(params: list[tuple[str, str]], scope: Scope) -> Query:
    query = Query()
    allowed = scope.searchable()
    for name, value in params:
        lowered = name.lower()
        if lowered == "includefield":
            _include(query, value)
        elif lowered == "limit":
            query.limit = _integer(name, value, 1, MAX_LIMIT)
        elif lowered == "offset":
            query.offset = _integer(name, value, 0, 2**31)
        elif lowered == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise BadRequest("fuzzymatching must be true or false.")
            query.fuzzy = value.lower() == "true"
        else:
            keyword = _keyword(name)
            if keyword not in allowed:
                raise BadRequest(f"The attribute '{name[:64]}' is not supported for searching "
                                 "this resource.")  # fmt: skip
            if keyword in query.filters:
                raise BadRequest(f"The attribute '{name[:64]}' is given more than once.")
            if not value:
                raise BadRequest(f"The value of '{name[:64]}' is empty.")
            query.filters[keyword] = value
    return query


def _include(query: Query, value: str) -> None:
    for item in value.split(","):
        if item.strip().lower() == "all":
            query.include_all = True
        elif item.strip():
            query.include.add(int(tag_for_keyword(_keyword(item.strip())) or 0))


def _keyword(name: str) -> str:
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        keyword = keyword_for_tag(int(name, 16))
    else:
        keyword = name if tag_for_keyword(name) is not None else ""
    if not keyword:
        raise BadRequest(f"'{name[:64]}' is not a known DICOM attribute keyword or tag.")
    return str(keyword)


def _integer(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"The value of '{name}' must be an integer.") from None
    if not low <= number <= high:
        raise BadRequest(f"The value of '{name}' must be between {low} and {high}.")
    return number


def search(session: Session, scope: Scope, query: Query) -> list[dict[str, Any]]:
    model: Any = {Level.STUDY: DicomStudy, Level.SERIES: DicomSeries,
                  Level.INSTANCE: DicomInstance}[scope.level]  # fmt: skip
    columns: list[Any] = [model.pk, DicomStudy.attributes]
    statement: Select[Any] = select(*columns).select_from(model)
    if scope.level >= Level.SERIES:
        statement = statement.add_columns(DicomSeries.attributes)
    if scope.level == Level.INSTANCE:
        statement = statement.add_columns(DicomInstance.attributes)
        statement = statement.join(DicomSeries, DicomInstance.series_pk == DicomSeries.pk)
    if scope.level >= Level.SERIES:
        statement = statement.join(DicomStudy, DicomSeries.study_pk == DicomStudy.pk)
    if scope.study is not None:
        statement = statement.where(DicomStudy.study_uid == scope.study)
    if scope.series is not None:
        statement = statement.where(DicomSeries.series_uid == scope.series)
    # SQLite compares text by code point, so a wildcard's literal prefix is also a range its
    # indexes can answer; PostgreSQL's collations need not order prefixes that way.
    by_code_point = session.get_bind().dialect.name == "sqlite"
    for keyword, value in query.filters.items():
        statement = statement.where(_condition(keyword, value, query.fuzzy, by_code_point))
    statement = statement.order_by(model.pk.desc()).limit(query.limit).offset(query.offset)
    rows = session.connection().execute(statement).all()
    computed = _computed(session, scope.level, [row[0] for row in rows], query)
    returned = _returned_keys(scope, query)
    return [_dataset(scope, returned, row, computed.get(row[0], {})) for row in rows]


def _condition(keyword: str, value: str, fuzzy: bool, by_code_point: bool) -> ColumnElement[bool]:
    if keyword == "ModalitiesInStudy":
        values = [v.upper() for v in re.split(r"[\\,]", value) if v]
        return exists().where(
            DicomSeries.study_pk == DicomStudy.pk, DicomSeries.modality.in_(values)
        )
    attribute = BY_KEYWORD[keyword]
    column: Any = getattr(MODEL[attribute.level], attribute.column)
    if attribute.kind is Kind.UID:
        uids: ColumnElement[bool] = column.in_([v for v in re.split(r"[\\,]", value) if v])
        return uids
    if attribute.kind is Kind.DATE:
        return _date_range(column, value, attribute)
    if attribute.kind is Kind.PERSON:
        return _person(attribute, value, fuzzy, by_code_point)
    if attribute.kind is Kind.CODE:
        return _text(column, value.upper(), by_code_point)
    return _text(column, value.lower(), by_code_point)


def _date_range(column: Any, value: str, attribute: Indexed) -> ColumnElement[bool]:
    low, dash, high = value.partition("-")
    for part in (low, high):
        if part and not _DATE.match(part):
            raise BadRequest(f"'{value[:40]}' is not a date or date range (YYYYMMDD) for "
                             f"{attribute.keyword}.")  # fmt: skip
    if not dash:
        return column == low  # type: ignore[no-any-return]
    if not low and not high:
        raise BadRequest(f"The date range '-' for {attribute.keyword} needs at least one end.")
    conditions = [column.is_not(None)]
    if low:
        conditions.append(column >= low)
    if high:
        conditions.append(column <= high)
    return and_(*conditions)


def _person(
    attribute: Indexed, value: str, fuzzy: bool, by_code_point: bool
) -> ColumnElement[bool]:
    model: Any = DicomStudy
    parts = name_words(value).split()
    if fuzzy and parts:  # a value without name parts ("^") has nothing to match fuzzily
        words = getattr(model, f"{attribute.column}_words")
        return and_(*(words.like(f"% {_escape(w)}%", escape="\\") for w in parts))
    return _text(getattr(model, attribute.column), fold(value), by_code_point)


def _text(column: Any, value: str, by_code_point: bool) -> ColumnElement[bool]:
    """Exact match, or PS3.4 §C.2.2.2.4 wildcard matching with ``*`` and ``?``."""
    if "*" not in value and "?" not in value:
        return column == value  # type: ignore[no-any-return]
    pattern = _escape(value).replace("*", "%").replace("?", "_")
    matches: ColumnElement[bool] = column.like(pattern, escape="\\")
    prefix = re.split(r"[*?]", value, maxsplit=1)[0]
    if not by_code_point or not prefix or prefix[-1] == chr(0x10FFFF):
        return matches
    after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(column >= prefix, column < after, matches)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _computed(
    session: Session, level: Level, pks: list[int], query: Query
) -> dict[int, dict[str, Any]]:
    wanted = [t for t in COMPUTED[level] if query.include_all or t in query.include]
    if not pks or not wanted:
        return {}
    found: dict[int, dict[str, Any]] = {pk: {} for pk in pks}
    if level == Level.SERIES:
        counts = select(DicomInstance.series_pk, func.count()).where(
            DicomInstance.series_pk.in_(pks)).group_by(DicomInstance.series_pk)  # fmt: skip
        for pk, count in session.connection().execute(counts):
            found[pk][dicomjson.tag_key(SERIES_INSTANCE_COUNT)] = {"vr": "IS", "Value": [count]}
        return found
    study_counts = (
        select(DicomInstance.study_pk, func.count(), func.count(DicomInstance.series_pk.distinct()))
        .where(DicomInstance.study_pk.in_(pks))
        .group_by(DicomInstance.study_pk)
    )
    for pk, instances, series in session.connection().execute(study_counts):
        found[pk][dicomjson.tag_key(STUDY_INSTANCE_COUNT)] = {"vr": "IS", "Value": [instances]}
        found[pk][dicomjson.tag_key(STUDY_SERIES_COUNT)] = {"vr": "IS", "Value": [series]}
    modalities = select(DicomSeries.study_pk, DicomSeries.modality).where(
        DicomSeries.study_pk.in_(pks), DicomSeries.modality.is_not(None)).distinct()  # fmt: skip
    by_study: dict[int, list[str]] = {}
    for pk, modality in session.connection().execute(modalities):
        by_study.setdefault(pk, []).append(str(modality))
    for pk, values in by_study.items():
        found[pk][dicomjson.tag_key(MODALITIES_IN_STUDY)] = {"vr": "CS", "Value": sorted(values)}
    return {
        pk: {k: v for k, v in items.items() if int(k, 16) in wanted} for pk, items in found.items()
    }


def _returned_keys(scope: Scope, query: Query) -> dict[Level, list[str]]:
    """Per level returned, the tag keys of the attributes each result carries."""
    filtered = {BY_KEYWORD[k].tag for k in query.filters if k in BY_KEYWORD}
    keys = {}
    for level in scope.returned_levels():
        tags = set(DEFAULT_TAGS[level]) | filtered
        tags |= set(ADDITIONAL_TAGS[level]) if query.include_all else query.include
        keys[level] = [dicomjson.tag_key(tag) for tag in sorted(tags)]
    return keys


def _dataset(
    scope: Scope, returned: dict[Level, list[str]], row: Any, computed: dict[str, Any]
) -> dict[str, Any]:
    stored = {Level.STUDY: row[1]}
    if scope.level >= Level.SERIES:
        stored[Level.SERIES] = row[2]
    if scope.level == Level.INSTANCE:
        stored[Level.INSTANCE] = row[3]
    result: dict[str, Any] = {}
    for level, keys in returned.items():
        attributes = json.loads(stored[level] or "{}")
        result |= {key: attributes[key] for key in keys if key in attributes}
    if scope.study is not None and Level.STUDY not in scope.returned_levels():
        result[dicomjson.tag_key(_T("StudyInstanceUID"))] = dicomjson.uid_element(scope.study)
    if scope.series is not None and Level.SERIES not in scope.returned_levels():
        result[dicomjson.tag_key(_T("SeriesInstanceUID"))] = dicomjson.uid_element(scope.series)
    result |= computed
    return dict(sorted(result.items()))
