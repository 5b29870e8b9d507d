"""QIDO-RS on extended query tags ("Extended query tags" overview, "QIDO with extended query
tags"): a parameter naming a tag outside the conformance statement's attributes matches on the
tag's values at its level, when the tag is ``ready``, its level searchable at the resource,
and its queries enabled. A tag with indexing errors that was enabled by hand answers, with the
results, the ``erroneous-dicom-attributes`` header naming it as the request did.

Each condition is a subquery on the level's values table, in one of two forms the shape
chooses. Alone, ``pk IN (SELECT resource_pk …)``: the database starts from the tag's values
index. Beside a condition naming a few resources (a UID, a patient ID), a correlated
``EXISTS``: SQLite would otherwise gather every resource with the value (every series of
BodyPartExamined=CHEST) to answer a search within one study; PostgreSQL plans both forms as the
same semi-join. The shape, not the tag, is what the compiled-statement cache keys on (the
tag's key is a parameter).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, ScalarSelect, bindparam, select

from dicomite.dicom.errors import BadRequest
from dicomite.dicom.index import extended_tags
from dicomite.dicom.index.extended_tags import VALUES, QueryTag
from dicomite.dicom.index.schema import Level
from dicomite.dicom.index.tag_values import Condition, conditions
from dicomite.dicom.model import dicomjson

ERRONEOUS_HEADER = "erroneous-dicom-attributes"


@dataclass(frozen=True)
class Filter:
    """A parameter naming a tag that may be an extended query tag: as sent, and its path."""

    name: str
    path: str
    value: str


@dataclass(frozen=True)
class Matched:
    tag: QueryTag
    conditions: list[Condition]


@dataclass(frozen=True)
class Resolved:
    matched: list[Matched]
    erroneous: list[str]  # the parameters naming tags with indexing errors


def resolve(
    db: Connection, filters: Sequence[Filter], levels: Iterable[Level], fuzzy: bool
) -> Resolved:
    """The filters as conditions on their tags; 400 for a tag that is not (yet) searchable here,
    as for any attribute the resource cannot be searched by, or whose queries are disabled."""
    tags = extended_tags.by_paths(db, [f.path for f in filters])
    searchable = frozenset(levels)
    matched, erroneous = [], []
    for found in filters:
        tag = tags.get(found.path)
        if tag is None or tag.status != extended_tags.READY or tag.level not in searchable:
            raise BadRequest(
                f"The attribute '{found.name[:64]}' is not supported for searching this resource."
            )
        if tag.query_status != extended_tags.ENABLED:
            raise BadRequest(f"Query is disabled on specified attribute '{found.name[:64]}'.")
        if tag.error_count:
            erroneous.append(found.name)
        matched.append(Matched(tag, conditions(found.name, tag.vr, found.value, fuzzy)))
    return Resolved(matched, erroneous)


# A tag condition's shape: the tag's level and its (comparison, column) pairs.
TagShape = tuple[Level, tuple[tuple[str, str], ...]]


def shape(matched: Matched) -> TagShape:
    return matched.tag.level, tuple(
        (comparison, column) for comparison, column, _ in matched.conditions
    )


def params(n: int, matched: Matched) -> dict[str, Any]:
    """The parameters of the ``n``-th tag condition: ``t{n}`` its key, ``t{n}_{i}`` values."""
    found: dict[str, Any] = {f"t{n}": matched.tag.key}
    found |= {f"t{n}_{i}": value for i, (_, _, value) in enumerate(matched.conditions)}
    return found


_COMPARE = {
    "=": lambda column, value: column == value,
    ">=": lambda column, value: column >= value,
    "<=": lambda column, value: column <= value,
    "like": lambda column, value: column.like(value, escape="\\"),
}


def condition(
    n: int, tag_shape: TagShape, pk: ColumnElement[int], correlated: bool
) -> ColumnElement[bool]:
    """The ``n``-th tag's condition on the resources ``pk``: ``correlated`` when the search
    already names a few of them (see above)."""
    level, compared = tag_shape
    values = VALUES[level]
    matching = [
        _COMPARE[comparison](values.c[column], bindparam(f"t{n}_{i}"))
        for i, (comparison, column) in enumerate(compared)
    ]
    matching.append(values.c.tag_key == bindparam(f"t{n}"))
    if correlated:
        return select(values.c.resource_pk).where(values.c.resource_pk == pk, *matching).exists()
    return pk.in_(select(values.c.resource_pk).where(*matching))


def element(n: int, level: Level, pk: ColumnElement[int]) -> ScalarSelect[Any]:
    """The ``n``-th tag's element at the result's resource of ``level``, as stored."""
    values = VALUES[level]
    return (
        select(values.c.element)
        .where(values.c.tag_key == bindparam(f"t{n}"), values.c.resource_pk == pk)
        .scalar_subquery()
    )


def returned(matched: Sequence[Matched], elements: Sequence[str | None]) -> Mapping[str, Any]:
    """The tags' elements of one result, by tag key, as QIDO returns them."""
    return {
        m.tag.path: dicomjson.decode(text)
        for m, text in zip(matched, elements, strict=True)
        if text is not None
    }
