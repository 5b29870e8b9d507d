"""What PostgreSQL's planner is told about a table's columns, as SQLAlchemy constructs
(``sqlalchemy.ext.compiler``). SQLite has no such settings; migrations apply these on
PostgreSQL only."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import ExecutableDDLElement
from sqlalchemy.sql.compiler import DDLCompiler

DEFAULT_TARGET = -1  # the server's default_statistics_target (100 unless configured)


class ColumnStatistics(ExecutableDDLElement):
    """``ALTER TABLE … ALTER COLUMN … SET STATISTICS target``: how many most common values and
    histogram buckets ANALYZE keeps for the column (PostgreSQL docs, "ALTER TABLE")."""

    inherit_cache = False

    def __init__(self, table: str, column: str, target: int) -> None:
        # not ``self.target``: DDLElement's name for the schema item it is about
        self.table, self.column, self.buckets = table, column, int(target)


class Analyze(ExecutableDDLElement):
    """``ANALYZE table``: new statistics now rather than at the next autovacuum."""

    inherit_cache = False

    def __init__(self, table: str) -> None:
        self.table = table


@compiles(ColumnStatistics, "postgresql")
def _set_statistics(element: ColumnStatistics, compiler: DDLCompiler, **kw: Any) -> str:
    quote = compiler.preparer.quote
    return (
        f"ALTER TABLE {quote(element.table)} ALTER COLUMN {quote(element.column)}"
        f" SET STATISTICS {element.buckets}"
    )


@compiles(Analyze, "postgresql")
def _analyze(element: Analyze, compiler: DDLCompiler, **kw: Any) -> str:
    return f"ANALYZE {compiler.preparer.quote(element.table)}"
