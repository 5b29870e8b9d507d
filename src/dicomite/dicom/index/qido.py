"""QIDO-RS (PS3.18 §10.6): search studies, series and instances, as the Azure DICOM
conformance statement describes (attributes per level, matching kinds, paging, 204 past the end).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from dicomite.dicom.errors import BadRequest
from dicomite.dicom.index.schema import (
    ADDITIONAL_TAGS,
    BY_KEYWORD,
    DEFAULT_TAGS,
    Indexed,
    Kind,
    Level,
    fold,
    name_words,
)
from dicomite.dicom.model import dicomjson
from dicomite.store.db import DriverCursor, placeholders
from dicomite.store.tables import DicomInstance, DicomSeries, DicomStudy

MAX_LIMIT, DEFAULT_LIMIT = 200, 100
_T = dicomjson.keyword_tag
MODALITIES_IN_STUDY = _T("ModalitiesInStudy")
STUDY_SERIES_COUNT = _T("NumberOfStudyRelatedSeries")
STUDY_INSTANCE_COUNT = _T("NumberOfStudyRelatedInstances")
SERIES_INSTANCE_COUNT = _T("NumberOfSeriesRelatedInstances")
COMPUTED = {
    Level.STUDY: [MODALITIES_IN_STUDY, STUDY_SERIES_COUNT, STUDY_INSTANCE_COUNT],
    Level.SERIES: [SERIES_INSTANCE_COUNT],
    Level.INSTANCE: [],
}
_DATE = re.compile(r"^\d{8}$")


@dataclass(frozen=True)
class Scope:
    """What is searched: a level, within an optional study and series (from the URL)."""

    level: Level
    study: str | None = None
    series: str | None = None

    def searchable(self) -> frozenset[str]:
        """The conformance statement's "Searchable Attributes" table, per resource."""
        return _searchable(self.level, self.study is not None, self.series is not None)

    def returned_levels(self) -> tuple[Level, ...]:
        if self.study is None:
            return tuple(lv for lv in Level if lv <= self.level)
        if self.level == Level.INSTANCE and self.series is None:
            return (Level.SERIES, Level.INSTANCE)
        return (self.level,)


@functools.cache  # one entry per resource (a handful)
def _searchable(level: Level, nested: bool, in_series: bool) -> frozenset[str]:
    levels = [lv for lv in Level if lv <= level]
    if nested:
        levels = [lv for lv in levels if lv > Level.STUDY]
    if in_series:
        levels = [Level.INSTANCE]
    names = {a.keyword for a in BY_KEYWORD.values() if a.level in levels}
    if Level.STUDY in levels:
        names.add("ModalitiesInStudy")
    return frozenset(names)


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
                raise BadRequest(
                    f"The attribute '{name[:64]}' is not supported for searching this resource."
                )
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


# The searched tables, each under the alias its level's columns are named with. Names come from
# the table definitions and ``index.INDEXED``, never from a request; every value is a parameter.
_STUDIES, _SERIES = DicomStudy.__tablename__, DicomSeries.__tablename__
_INSTANCES = DicomInstance.__tablename__
_ALIAS = {Level.STUDY: "s", Level.SERIES: "r", Level.INSTANCE: "i"}
_FROM = {
    Level.STUDY: f"{_STUDIES} s",
    Level.SERIES: f"{_SERIES} r JOIN {_STUDIES} s ON r.study_pk = s.pk",
    Level.INSTANCE: f"{_INSTANCES} i JOIN {_SERIES} r ON i.series_pk = r.pk"
    f" JOIN {_STUDIES} s ON r.study_pk = s.pk",
}
# Each level's result carries the stored attributes of its own level and the levels above.
_STORED = {
    level: ", ".join(f"{_ALIAS[above]}.attributes" for above in Level if above <= level)
    for level in Level
}


@dataclass
class _Where:
    """A search's conditions, ANDed: SQL with ``?`` placeholders, and their values."""

    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def sql(self) -> str:
        return f" WHERE {' AND '.join(self.clauses)}" if self.clauses else ""


def search(db: DriverCursor, scope: Scope, query: Query) -> list[dict[str, Any]]:
    """One page of results, newest first. On the DBAPI cursor: this runs for every QIDO
    request, and building and compiling SQLAlchemy statements cost more than the query."""
    where = _Where()
    if scope.study is not None:
        where.add("s.study_uid = ?", scope.study)
    if scope.series is not None:
        where.add("r.series_uid = ?", scope.series)
    # SQLite compares text by code point, so a wildcard's literal prefix is also a range its
    # indexes can answer; PostgreSQL's collations need not order prefixes that way.
    for keyword, value in query.filters.items():
        _condition(where, keyword, value, query.fuzzy, by_code_point=db.sqlite)
    pk = f"{_ALIAS[scope.level]}.pk"
    rows = db.rows(
        f"SELECT {pk}, {_STORED[scope.level]} FROM {_FROM[scope.level]}{where.sql()}"  # noqa: S608
        f" ORDER BY {pk} DESC LIMIT ? OFFSET ?",
        [*where.params, query.limit, query.offset],
    )
    computed = _computed(db, scope.level, [row[0] for row in rows], query)
    returned = _returned_keys(scope, query)
    return [_dataset(scope, returned, row, computed.get(row[0], {})) for row in rows]


def _condition(where: _Where, keyword: str, value: str, fuzzy: bool, by_code_point: bool) -> None:
    if keyword == "ModalitiesInStudy":  # any series of the result's study
        values = [v.upper() for v in _listed(value)]
        where.add(
            f"EXISTS (SELECT 1 FROM {_SERIES} m WHERE m.study_pk = s.pk"  # noqa: S608
            f" AND m.modality IN ({placeholders(len(values))}))",
            *values,
        )
        return
    attribute = BY_KEYWORD[keyword]
    column = f"{_ALIAS[attribute.level]}.{attribute.column}"
    if attribute.kind is Kind.UID:
        uids = _listed(value)
        where.add(f"{column} IN ({placeholders(len(uids))})", *uids)
    elif attribute.kind is Kind.DATE:
        _date_range(where, column, value, attribute)
    elif attribute.kind is Kind.PERSON:
        _person(where, column, value, fuzzy, by_code_point)
    elif attribute.kind is Kind.CODE:
        _text(where, column, value.upper(), by_code_point)
    else:
        _text(where, column, value.lower(), by_code_point)


def _listed(value: str) -> list[str]:
    """The values of a list match: separated by backslashes (PS3.18) or commas."""
    return [v for v in re.split(r"[\\,]", value) if v]


def _date_range(where: _Where, column: str, value: str, attribute: Indexed) -> None:
    low, dash, high = value.partition("-")
    for part in (low, high):
        if part and not _DATE.match(part):
            raise BadRequest(
                f"'{value[:40]}' is not a date or date range (YYYYMMDD) for {attribute.keyword}."
            )
    if not dash:
        where.add(f"{column} = ?", low)
        return
    if not low and not high:
        raise BadRequest(f"The date range '-' for {attribute.keyword} needs at least one end.")
    where.add(f"{column} IS NOT NULL")
    if low:
        where.add(f"{column} >= ?", low)
    if high:
        where.add(f"{column} <= ?", high)


def _person(where: _Where, column: str, value: str, fuzzy: bool, by_code_point: bool) -> None:
    parts = name_words(value).split()
    if fuzzy and parts:  # a value without name parts ("^") has nothing to match fuzzily
        for word in parts:
            where.add(f"{column}_words LIKE ? ESCAPE '\\'", f"% {_escape(word)}%")
        return
    _text(where, column, fold(value), by_code_point)


def _text(where: _Where, column: str, value: str, by_code_point: bool) -> None:
    """Exact match, or PS3.4 §C.2.2.2.4 wildcard matching with ``*`` and ``?``."""
    if "*" not in value and "?" not in value:
        where.add(f"{column} = ?", value)
        return
    prefix = re.split(r"[*?]", value, maxsplit=1)[0]
    if by_code_point and prefix and prefix[-1] != chr(0x10FFFF):
        where.add(f"{column} >= ? AND {column} < ?", prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))
    pattern = _escape(value).replace("*", "%").replace("?", "_")
    where.add(f"{column} LIKE ? ESCAPE '\\'", pattern)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _computed(
    db: DriverCursor, level: Level, pks: list[int], query: Query
) -> dict[int, dict[str, Any]]:
    wanted = [t for t in COMPUTED[level] if query.include_all or t in query.include]
    if not pks or not wanted:
        return {}
    found: dict[int, dict[str, Any]] = {pk: {} for pk in pks}
    marks = placeholders(len(pks))
    if level == Level.SERIES:
        counts = db.rows(
            f"SELECT series_pk, count(*) FROM {_INSTANCES}"  # noqa: S608
            f" WHERE series_pk IN ({marks}) GROUP BY series_pk",
            pks,
        )
        for pk, count in counts:
            found[pk][dicomjson.tag_key(SERIES_INSTANCE_COUNT)] = {"vr": "IS", "Value": [count]}
        return found
    study_counts = db.rows(
        f"SELECT study_pk, count(*), count(DISTINCT series_pk) FROM {_INSTANCES}"  # noqa: S608
        f" WHERE study_pk IN ({marks}) GROUP BY study_pk",
        pks,
    )
    for pk, instances, series in study_counts:
        found[pk][dicomjson.tag_key(STUDY_INSTANCE_COUNT)] = {"vr": "IS", "Value": [instances]}
        found[pk][dicomjson.tag_key(STUDY_SERIES_COUNT)] = {"vr": "IS", "Value": [series]}
    modalities = db.rows(
        f"SELECT DISTINCT study_pk, modality FROM {_SERIES}"  # noqa: S608
        f" WHERE study_pk IN ({marks}) AND modality IS NOT NULL",
        pks,
    )
    by_study: dict[int, list[str]] = {}
    for pk, modality in modalities:
        by_study.setdefault(pk, []).append(str(modality))
    for pk, values in by_study.items():
        found[pk][dicomjson.tag_key(MODALITIES_IN_STUDY)] = {"vr": "CS", "Value": sorted(values)}
    return {
        pk: {k: v for k, v in items.items() if int(k, 16) in wanted} for pk, items in found.items()
    }


def _returned_keys(scope: Scope, query: Query) -> Mapping[Level, Sequence[str]]:
    """Per level returned, the tag keys of the attributes each result carries."""
    filtered = frozenset(k for k in query.filters if k in BY_KEYWORD)
    return _keys_of(scope.returned_levels(), filtered, query.include_all, frozenset(query.include))


@functools.lru_cache(maxsize=256)  # the same few shapes of query, request after request
def _keys_of(
    levels: tuple[Level, ...], filtered: frozenset[str], include_all: bool, include: frozenset[int]
) -> Mapping[Level, Sequence[str]]:
    filtered_tags = {BY_KEYWORD[k].tag for k in filtered}
    keys = {}
    for level in levels:
        tags = set(DEFAULT_TAGS[level]) | filtered_tags
        tags |= set(ADDITIONAL_TAGS[level]) if include_all else include
        keys[level] = [dicomjson.tag_key(tag) for tag in sorted(tags)]
    return keys


def _dataset(
    scope: Scope, returned: Mapping[Level, Sequence[str]], row: Any, computed: dict[str, Any]
) -> dict[str, Any]:
    # the row: pk, then the stored attributes of each level down to the searched one (_STORED)
    stored = dict(zip(Level, row[1:], strict=False))
    result: dict[str, Any] = {}
    for level, keys in returned.items():
        attributes = json.loads(stored[level] or "{}")
        result |= {key: attributes[key] for key in keys if key in attributes}
    if scope.study is not None and Level.STUDY not in returned:
        result[dicomjson.tag_key(_T("StudyInstanceUID"))] = dicomjson.uid_element(scope.study)
    if scope.series is not None and Level.SERIES not in returned:
        result[dicomjson.tag_key(_T("SeriesInstanceUID"))] = dicomjson.uid_element(scope.series)
    result |= computed
    return dict(sorted(result.items()))
