"""The OData query options Dicomite understands: a small ``$filter``, ``$top``, ``$skiptoken``
and ``$select`` (OData v4 URL conventions §5.1).

``$filter`` accepts one clause: ``prop eq 'v'``, ``startswith(prop,'v')`` or
``prop/any(x:x eq 'v')``, with ``''`` as the escaped quote; string comparisons ignore case, as
the directory's do. Other query options are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from dicomite.graph.errors import BadRequest

T = TypeVar("T")
DEFAULT_TOP = 100
MAX_TOP = 999
_LITERAL = r"'((?:[^']|'')*)'"
_CLAUSES = (
    ("eq", re.compile(rf"^\s*(\w+)\s+eq\s+{_LITERAL}\s*$")),
    ("startswith", re.compile(rf"^\s*startswith\(\s*(\w+)\s*,\s*{_LITERAL}\s*\)\s*$", re.I)),
    ("any", re.compile(rf"^\s*(\w+)/any\(\s*(\w+)\s*:\s*\2\s+eq\s+{_LITERAL}\s*\)\s*$", re.I)),
)
Accessor = Callable[[Any], Any]


@dataclass(frozen=True)
class Filter:
    field: str
    op: str
    value: str

    def matches(self, actual: Any) -> bool:
        wanted = self.value.casefold()
        if self.op == "any":
            return any(str(v).casefold() == wanted for v in actual or ())
        if actual is None:
            return False
        if self.op == "startswith":
            return str(actual).casefold().startswith(wanted)
        return str(actual).casefold() == wanted


@dataclass(frozen=True)
class Query:
    filter: Filter | None
    top: int
    skip: int
    select: tuple[str, ...]


def parse(params: QueryParams, *, max_top: int = MAX_TOP) -> Query:
    return Query(
        filter=parse_filter(params.get("$filter")),
        top=_integer(params.get("$top"), "$top", DEFAULT_TOP, 1, max_top),
        skip=_integer(params.get("$skiptoken"), "$skiptoken", 0, 0, 10**9),
        select=tuple(s.strip() for s in params.get("$select", "").split(",") if s.strip()),
    )


def parse_filter(text: str | None) -> Filter | None:
    if not text:
        return None
    for op, pattern in _CLAUSES:
        match = pattern.match(text)
        if match:
            field, value = match.group(1), match.groups()[-1]
            return Filter(field, op, value.replace("''", "'"))
    raise BadRequest(f"Invalid filter clause: '{text[:100]}' is not supported.")


def _integer(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    # int() would also take surrounding whitespace (and refuse control characters): only
    # ASCII digits, nothing else, are a number here.
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or not low <= int(text) <= high:
        raise BadRequest(f"Invalid value '{text[:40]}' for {name}; use {low} to {high}.")
    return int(text)


def apply_filter(
    items: Iterable[T], query: Query, fields: Mapping[str, Callable[[T], Any]]
) -> list[T]:
    """Keep the items the filter selects; ``fields`` maps Graph property names to getters."""
    if query.filter is None:
        return list(items)
    getter = fields.get(query.filter.field)
    if getter is None:
        raise BadRequest(
            f"Invalid filter clause: filtering on '{query.filter.field}' is not supported."
        )
    return [item for item in items if query.filter.matches(getter(item))]


def page(items: Sequence[T], query: Query) -> tuple[Sequence[T], int | None]:
    """The items of this page and the ``$skiptoken`` of the next one (None on the last)."""
    end = query.skip + query.top
    return items[query.skip : end], (end if end < len(items) else None)


def select(entity: dict[str, Any], query: Query, type_name: str) -> dict[str, Any]:
    if not query.select:
        return entity
    unknown = [name for name in query.select if name not in entity]
    if unknown:
        raise BadRequest(
            f"Could not find a property named '{unknown[0][:100]}' on type "
            f"'microsoft.graph.{type_name}'."
        )
    return {name: entity[name] for name in query.select}


def next_link(url: str, params: QueryParams, skip: int | None) -> dict[str, str]:
    if skip is None:
        return {}
    query = [(k, v) for k, v in params.multi_items() if k != "$skiptoken"]
    return {"@odata.nextLink": f"{url}?{urlencode([*query, ('$skiptoken', str(skip))])}"}
