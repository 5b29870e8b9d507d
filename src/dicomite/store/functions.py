"""SQL functions whose spelling differs between SQLite and PostgreSQL, as SQLAlchemy
constructs (``sqlalchemy.ext.compiler``), so callers build one statement for both."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

SEPARATOR = ","


class DistinctJoined(FunctionElement[str]):
    """The distinct non-null values of one column in a group, joined by ``SEPARATOR`` in no
    particular order; NULL for none. For values that never hold the separator."""

    type = String()
    inherit_cache = True
    name = "distinct_joined"


@compiles(DistinctJoined)
def _group_concat(element: DistinctJoined, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite: group_concat(DISTINCT X) takes no separator argument and joins with ","
    return f"group_concat(DISTINCT {compiler.process(element.clauses, **kw)})"


@compiles(DistinctJoined, "postgresql")
def _string_agg(element: DistinctJoined, compiler: SQLCompiler, **kw: Any) -> str:
    return f"string_agg(DISTINCT {compiler.process(element.clauses, **kw)}, '{SEPARATOR}')"
