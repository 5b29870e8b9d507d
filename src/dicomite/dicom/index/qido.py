"""QIDO-RS (PS3.18 §10.6): search studies, series and instances, as the Azure DICOM
conformance statement describes (attributes per level, matching kinds, paging, 204 past the end).
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    FromClause,
    Integer,
    Select,
    Table,
    bindparam,
    distinct,
    exists,
    func,
    select,
)

from dicomite.dicom.errors import BadRequest
from dicomite.dicom.index import qido_tags
from dicomite.dicom.index.partitions import UNPARTITIONED, Partition
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
from dicomite.store.compiled import select_rows
from dicomite.store.functions import SEPARATOR
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
# Computed attributes returned without includefield (when they have a value): ModalitiesInStudy,
# which the conformance statement's default study attributes lack (a divergence the README
# documents), because OHIF's study list offers no mode to open a study whose result lacks it.
# It is a column of the study row (index.write keeps it); the counts read every instance of the
# page's studies, so they are returned only when asked for.
_DATE = re.compile(r"^\d{8}$")


@dataclass(frozen=True)
class Scope:
    """What is searched: a level, within an optional study and series (from the URL)."""

    level: Level
    study: str | None = None
    series: str | None = None
    partition: Partition = UNPARTITIONED

    def searchable(self) -> frozenset[str]:
        """The conformance statement's "Searchable Attributes" table, per resource."""
        return _searchable(self.level, self.study is not None, self.series is not None)

    def levels(self) -> tuple[Level, ...]:
        """The levels whose attributes the resource is searched by."""
        return _levels(self.level, self.study is not None, self.series is not None)

    def returned_levels(self) -> tuple[Level, ...]:
        if self.study is None:
            return tuple(lv for lv in Level if lv <= self.level)
        if self.level == Level.INSTANCE and self.series is None:
            return (Level.SERIES, Level.INSTANCE)
        return (self.level,)


def _levels(level: Level, nested: bool, in_series: bool) -> tuple[Level, ...]:
    if in_series:
        return (Level.INSTANCE,)
    return tuple(lv for lv in Level if lv <= level and not (nested and lv == Level.STUDY))


@functools.cache  # one entry per resource (a handful)
def _searchable(level: Level, nested: bool, in_series: bool) -> frozenset[str]:
    levels = _levels(level, nested, in_series)
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
    tags: list[qido_tags.Filter] = field(default_factory=list)  # maybe extended query tags


def parse(params: list[tuple[str, str]], scope: Scope) -> Query:
    query = Query()
    allowed = scope.searchable()
    for name, value in params:
        if "\x00" in value:  # no DICOM value holds one, and PostgreSQL's text cannot
            raise BadRequest(f"The value of '{name[:64]}' holds a NUL character.")
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
            _filter(query, allowed, name, value)
    return query


def _filter(query: Query, allowed: frozenset[str], name: str, value: str) -> None:
    """A conformance statement attribute's filter, or one that may name an extended query
    tag (any other attribute, private ones by their tag), resolved when searching."""
    keyword = _keyword(name) if not _PRIVATE.match(name) else ""
    core = keyword in allowed
    if not core and (keyword in BY_KEYWORD or keyword == "ModalitiesInStudy"):
        raise BadRequest(
            f"The attribute '{name[:64]}' is not supported for searching this resource."
        )
    path = f"{tag_for_keyword(keyword):08X}" if keyword else name.upper()
    if keyword in query.filters or any(f.path == path for f in query.tags):
        raise BadRequest(f"The attribute '{name[:64]}' is given more than once.")
    if not value:
        raise BadRequest(f"The value of '{name[:64]}' is empty.")
    if core:
        query.filters[keyword] = value
    else:
        query.tags.append(qido_tags.Filter(name, path, value))


_PRIVATE = re.compile(r"^[0-9A-Fa-f]{3}[13579BDFbdf][0-9A-Fa-f]{4}$")  # an odd group


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


# The searched tables. A search's conditions are a shape (which column, which comparison) and
# values: the statement of each shape is built once (``_statement``) with bound parameters, so
# it is compiled once and each later search runs it from the engine's compiled cache, its cache
# key already computed. Lists go in expanding parameters: their length is not a shape.
_STUDIES = cast(Table, DicomStudy.__table__)
_SERIES = cast(Table, DicomSeries.__table__)
_INSTANCES = cast(Table, DicomInstance.__table__)
_TABLE = {Level.STUDY: _STUDIES, Level.SERIES: _SERIES, Level.INSTANCE: _INSTANCES}
_FROM: dict[Level, FromClause] = {
    Level.STUDY: _STUDIES,
    Level.SERIES: _SERIES.join(_STUDIES, _SERIES.c.study_pk == _STUDIES.c.pk),
    Level.INSTANCE: _INSTANCES.join(_SERIES, _INSTANCES.c.series_pk == _SERIES.c.pk).join(
        _STUDIES, _SERIES.c.study_pk == _STUDIES.c.pk
    ),
}
_MODALITIES = _SERIES.alias("m")
_PKS = bindparam("pks", type_=Integer, expanding=True)
_SERIES_COUNTS = (
    select(_INSTANCES.c.series_pk, func.count())
    .where(_INSTANCES.c.series_pk.in_(_PKS))
    .group_by(_INSTANCES.c.series_pk)
)
_STUDY_COUNTS = (
    select(_INSTANCES.c.study_pk, func.count(), func.count(distinct(_INSTANCES.c.series_pk)))
    .where(_INSTANCES.c.study_pk.in_(_PKS))
    .group_by(_INSTANCES.c.study_pk)
)
# A condition's shape: a comparison, and the level and name of the column compared.
Shape = tuple[str, Level, str]
_COMPARISONS: dict[str, Callable[[Column[Any], BindParameter[Any]], ColumnElement[bool]]] = {
    "=": operator.eq,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "in": lambda column, value: column.in_(value),
    "like": lambda column, value: column.like(value, escape="\\"),
    "not null": lambda column, _: column.is_not(None),
    # any series of the result's study (ModalitiesInStudy)
    "modality in": lambda _, value: exists().where(
        _MODALITIES.c.study_pk == _STUDIES.c.pk, _MODALITIES.c.modality.in_(value)
    ),
}
_EXPANDING = frozenset({"in", "modality in"})
# Each level's result carries the stored attributes of its own level and of the levels above.
_STORED_LEVELS = {level: tuple(above for above in Level if above <= level) for level in Level}


@functools.lru_cache(maxsize=512)  # the same few shapes of query, request after request
def _statement(
    level: Level, shapes: tuple[Shape, ...], tags: tuple[qido_tags.TagShape, ...] = ()
) -> Select[Any]:
    """The search of ``level`` with ``shapes`` ANDed, their values parameters ``p0``, ``p1``…,
    and the conditions on extended query tags ``tags`` (``qido_tags``); its key, the stored
    attributes of the levels above and its own, for studies their modalities joined, and the
    tags' elements."""
    table = _TABLE[level]
    conditions = [
        _COMPARISONS[comparison](
            _TABLE[at].c[name], bindparam(f"p{n}", expanding=comparison in _EXPANDING)
        )
        for n, (comparison, at, name) in enumerate(shapes)
    ]
    correlated = any(_names_few(shape) for shape in shapes)
    conditions += [
        qido_tags.condition(n, shape, _TABLE[shape[0]].c.pk, correlated)
        for n, shape in enumerate(tags)
    ]
    columns: list[Any] = [table.c.pk]
    columns += [_TABLE[above].c.attributes for above in _STORED_LEVELS[level]]
    if level == Level.STUDY:
        columns.append(_STUDIES.c.modalities)  # kept by the index writer
    columns += [
        qido_tags.element(n, shape[0], _TABLE[shape[0]].c.pk) for n, shape in enumerate(tags)
    ]
    return (
        select(*columns)
        .select_from(_FROM[level])
        .where(*conditions)
        .order_by(table.c.pk.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


# Columns whose exact values name a few resources each: beside one of them, a condition on an
# extended query tag is checked per resource (``qido_tags``).
_FEW_PER_VALUE = frozenset({"study_uid", "series_uid", "sop_uid", "patient_id", "accession_number"})


def _names_few(shape: Shape) -> bool:
    comparison, _, name = shape
    return comparison in ("=", "in") and name in _FEW_PER_VALUE


@dataclass
class _Where:
    """A search's conditions, ANDed: their shapes and values."""

    shapes: list[Shape] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, comparison: str, attribute: tuple[Level, str], value: Any = None) -> None:
        self.params[f"p{len(self.shapes)}"] = value
        self.shapes.append((comparison, *attribute))


@dataclass(frozen=True)
class Found:
    results: list[dict[str, Any]]
    erroneous: list[str]  # ``erroneous-dicom-attributes`` (``qido_tags``)


def search(db: Connection, scope: Scope, query: Query) -> list[dict[str, Any]]:
    """One page of results, newest first."""
    return find(db, scope, query).results


def find(db: Connection, scope: Scope, query: Query) -> Found:
    """One page of results, newest first, and the extended query tags searched by that have
    indexing errors."""
    resolved = qido_tags.Resolved([], [])
    if query.tags:
        resolved = qido_tags.resolve(db, query.tags, scope.levels(), query.fuzzy)
    where = _Where()
    if scope.partition.scoped:  # first: its index (partition_key, study_uid) serves both
        where.add("=", (Level.STUDY, "partition_key"), scope.partition.key)
    if scope.study is not None:
        where.add("=", (Level.STUDY, "study_uid"), scope.study)
    if scope.series is not None:
        where.add("=", (Level.SERIES, "series_uid"), scope.series)
    # SQLite compares text by code point, so a wildcard's literal prefix is also a range its
    # indexes can answer; PostgreSQL's collations need not order prefixes that way.
    by_code_point = db.dialect.name == "sqlite"
    for keyword, value in query.filters.items():
        _condition(where, keyword, value, query.fuzzy, by_code_point)
    params = {**where.params, "limit": query.limit, "offset": query.offset}
    for n, matched in enumerate(resolved.matched):
        params |= qido_tags.params(n, matched)
    shapes = tuple(qido_tags.shape(matched) for matched in resolved.matched)
    found = select_rows(db, _statement(scope.level, tuple(where.shapes), shapes), params)
    computed = _computed(db, scope.level, [row[0] for row in found], query)
    returned = _returned_keys(scope, query)
    page = _Page(returned)
    results = [
        _result(scope, page, row, computed.get(row[0], {}), resolved.matched) for row in found
    ]
    return Found(results, resolved.erroneous)


def _result(
    scope: Scope,
    page: _Page,
    row: Any,
    computed: dict[str, Any],
    tags: Sequence[qido_tags.Matched] = (),
) -> dict[str, Any]:
    """A row of ``_statement``'s as a result dataset."""
    stored = len(_STORED_LEVELS[scope.level])
    if scope.level == Level.STUDY and row[1 + stored]:
        modalities = sorted(row[1 + stored].split(SEPARATOR))
        computed = {**computed, _MODALITIES_KEY: {"vr": "CS", "Value": modalities}}
    if tags:
        computed = {**computed, **qido_tags.returned(tags, row[len(row) - len(tags) :])}
    return _dataset(scope, page, row[1 : 1 + stored], computed)


def _condition(where: _Where, keyword: str, value: str, fuzzy: bool, by_code_point: bool) -> None:
    if keyword == "ModalitiesInStudy":
        where.add("modality in", (Level.SERIES, "modality"), [v.upper() for v in _listed(value)])
        return
    attribute = BY_KEYWORD[keyword]
    column = (attribute.level, attribute.column)
    if attribute.kind is Kind.UID:
        where.add("in", column, _listed(value))
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


def _date_range(where: _Where, column: tuple[Level, str], value: str, attribute: Indexed) -> None:
    low, dash, high = value.partition("-")
    for part in (low, high):
        if part and not _DATE.match(part):
            raise BadRequest(
                f"'{value[:40]}' is not a date or date range (YYYYMMDD) for {attribute.keyword}."
            )
    if not dash:
        where.add("=", column, low)
        return
    if not low and not high:
        raise BadRequest(f"The date range '-' for {attribute.keyword} needs at least one end.")
    where.add("not null", column)
    if low:
        where.add(">=", column, low)
    if high:
        where.add("<=", column, high)


def _person(
    where: _Where, column: tuple[Level, str], value: str, fuzzy: bool, by_code_point: bool
) -> None:
    parts = name_words(value).split()
    if fuzzy and parts:  # a value without name parts ("^") has nothing to match fuzzily
        level, name = column
        for word in parts:
            where.add("like", (level, f"{name}_words"), f"% {_escape(word)}%")
        return
    _text(where, column, fold(value), by_code_point)


def _text(where: _Where, column: tuple[Level, str], value: str, by_code_point: bool) -> None:
    """Exact match, or PS3.4 §C.2.2.2.4 wildcard matching with ``*`` and ``?``."""
    if "*" not in value and "?" not in value:
        where.add("=", column, value)
        return
    prefix = re.split(r"[*?]", value, maxsplit=1)[0]
    if by_code_point and prefix and prefix[-1] != chr(0x10FFFF):
        where.add(">=", column, prefix)
        where.add("<", column, prefix[:-1] + chr(ord(prefix[-1]) + 1))
    pattern = _escape(value).replace("*", "%").replace("?", "_")
    where.add("like", column, pattern)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _computed(
    db: Connection, level: Level, pks: list[int], query: Query
) -> dict[int, dict[str, Any]]:
    """The computed attributes of a page's results, by key: one query per kind, for the page."""
    # ModalitiesInStudy comes with every study, from the search's statement (a study column)
    wanted = {
        t
        for t in COMPUTED[level]
        if t != MODALITIES_IN_STUDY and (query.include_all or t in query.include)
    }
    if not pks or not wanted:
        return {}
    found: dict[int, dict[str, Any]] = {pk: {} for pk in pks}
    if SERIES_INSTANCE_COUNT in wanted:
        for pk, count in select_rows(db, _SERIES_COUNTS, {"pks": pks}):
            found[pk][dicomjson.tag_key(SERIES_INSTANCE_COUNT)] = {"vr": "IS", "Value": [count]}
    if wanted & {STUDY_INSTANCE_COUNT, STUDY_SERIES_COUNT}:
        _study_counts(db, pks, wanted, found)
    return found


def _study_counts(
    db: Connection, pks: list[int], wanted: set[int], found: dict[int, dict[str, Any]]
) -> None:
    for pk, instances, series in select_rows(db, _STUDY_COUNTS, {"pks": pks}):
        for tag, count in ((STUDY_INSTANCE_COUNT, instances), (STUDY_SERIES_COUNT, series)):
            if tag in wanted:
                found[pk][dicomjson.tag_key(tag)] = {"vr": "IS", "Value": [count]}


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


_LEVELS = tuple(Level)
_STUDY_UID = dicomjson.tag_key(_T("StudyInstanceUID"))
_MODALITIES_KEY = dicomjson.tag_key(MODALITIES_IN_STUDY)
_SERIES_UID = dicomjson.tag_key(_T("SeriesInstanceUID"))


class _Page:
    """The attributes a page's results return from each level's stored attributes, decoded
    once per study or series: a page of series or instances holds the same few studies' and
    series' attributes row after row."""

    def __init__(self, returned: Mapping[Level, Sequence[str]]) -> None:
        self.returned = returned
        self._picked: dict[tuple[Level, str | None], dict[str, Any]] = {}

    def picked(self, level: Level, stored: str | None) -> dict[str, Any]:
        found = self._picked.get((level, stored))
        if found is None:
            attributes = dicomjson.decode(stored or "{}")
            found = {key: attributes[key] for key in self.returned[level] if key in attributes}
            self._picked[(level, stored)] = found
        return found


def _dataset(scope: Scope, page: _Page, row: Any, computed: dict[str, Any]) -> dict[str, Any]:
    # the stored attributes of each level down to the searched one
    stored = dict(zip(_LEVELS, row, strict=False))
    returned = page.returned
    result: dict[str, Any] = {}
    for level in returned:
        result |= page.picked(level, stored[level])
    if scope.study is not None and Level.STUDY not in returned:
        result[_STUDY_UID] = dicomjson.uid_element(scope.study)
    if scope.series is not None and Level.SERIES not in returned:
        result[_SERIES_UID] = dicomjson.uid_element(scope.series)
    result |= computed
    return dict(sorted(result.items()))
