"""Indexing instances on extended query tags: an instance's values of the tags (from its DICOM
JSON), and writing them at each tag's level. STOW writes them with the instance
(``index.write``); a reindex (``dicom.operations.reindex``) for the instances stored before.

A study's or series' value is its latest instance's, as for the conformance statement's own
attributes (QIDO "Additional Notes"): the values of a resource are replaced as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert

from dicomite.dicom.index.extended_tags import VALUES, Indexed, QueryTag
from dicomite.dicom.index.schema import Level
from dicomite.dicom.index.tag_values import InvalidValue, Stored, stored
from dicomite.dicom.model import dicomjson
from dicomite.dicom.model.dicomjson import Fragments

Lookup = Callable[[str], "dict[str, Any] | None"]  # tag key -> DICOM JSON element


@dataclass(frozen=True)
class InstanceTags:
    """An instance's values of the tags indexed at a version of the set of tags."""

    indexed: Indexed
    values: tuple[tuple[QueryTag, Stored], ...] = ()
    problems: tuple[tuple[QueryTag, str], ...] = field(default=(), compare=False)


NO_TAGS = InstanceTags(Indexed(-1, ()))


def extract(tags: Indexed, lookup: Lookup) -> InstanceTags:
    """The instance's values; a value that cannot be indexed is a problem instead."""
    values, problems = [], []
    for tag in tags.tags:
        try:
            found = _value(tag, lookup)
        except InvalidValue as error:
            problems.append((tag, str(error)))
            continue
        if found is not None:
            values.append((tag, found))
    return InstanceTags(tags, tuple(values), tuple(problems))


def _value(tag: QueryTag, lookup: Lookup) -> Stored | None:
    if tag.private_creator is not None and not _in_block(tag, lookup):
        return None
    return stored(tag.path, tag.vr, lookup(tag.path))


def _in_block(tag: QueryTag, lookup: Lookup) -> bool:
    """Whether the private tag's block (gggg,xx00-xxFF) is reserved by its private creator:
    the element (gggg,00xx) holds the creator's name (PS3.5 §7.8.1)."""
    creator = lookup(f"{tag.tag >> 16:04X}00{(tag.tag >> 8) & 0xFF:02X}") or {}
    names = creator.get("Value") or [None]
    return isinstance(names[0], str) and names[0].strip() == tag.private_creator


def fragments_lookup(fragments: Fragments) -> Lookup:
    """Elements of STOW's metadata fragments, parsed only when a tag asks for them."""

    def lookup(key: str) -> dict[str, Any] | None:
        text = fragments.get(key)
        return None if text is None else dict(dicomjson.decode(text))

    return lookup


def metadata_lookup(metadata: Mapping[str, Any]) -> Lookup:
    def lookup(key: str) -> dict[str, Any] | None:
        element = metadata.get(key)
        return element if isinstance(element, dict) else None

    return lookup


# Per level, the resources (study, series or instance keys) and the values each now has.
Resources = dict[Level, dict[int, InstanceTags]]


def write(db: Connection, resources: Resources, tags: Iterable[QueryTag]) -> None:
    """Replace the values of ``tags`` at each resource with those given."""
    keys = {level: [t.key for t in tags if t.level == level] for level in Level}
    for level, found in resources.items():
        if not keys[level] or not found:
            continue
        table = VALUES[level]
        db.execute(_DELETES[level], {"keys": keys[level], "pks": list(found)})
        rows = [
            {"tag_key": tag.key, "resource_pk": pk, **value.row()}
            for pk, values in found.items()
            for tag, value in values.values
            if tag.level == level and tag.key in keys[level]
        ]
        if rows:
            db.execute(insert(table), rows)


_DELETES = {
    level: delete(table).where(
        table.c.tag_key.in_(bindparam("keys", expanding=True)),
        table.c.resource_pk.in_(bindparam("pks", expanding=True)),
    )
    for level, table in VALUES.items()
}


def levels_of(tags: Sequence[QueryTag]) -> frozenset[Level]:
    return frozenset(tag.level for tag in tags)
