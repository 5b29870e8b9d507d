"""Core statements compiled by SQLAlchemy once per dialect, run on the driver's cursor.

For the DICOM index's hot reads (QIDO, metadata, WADO lookups) and the token endpoint's
version probe: ``Connection.execute`` finds the compiled form in the engine's cache, but its
per-call bookkeeping (events, execution context, result metadata) cost more than SQLite spent
on the query, 60-80 us of a QIDO request's ~250. Here the statement's compiled form is kept
beside the statement object, and each call runs its SQL string on the transaction's own driver
connection with the parameters SQLAlchemy constructs and its type processors applied, so the
SQL stays SQLAlchemy's, for each dialect. Statements are module constants or come from a
bounded ``lru_cache``, so the same objects recur and the cache keys on them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

# Distinct statements kept per dialect: QIDO builds at most 512 shapes (its own lru_cache);
# past this the cache starts again, so a flood of new shapes costs compiling, not memory.
MAX_STATEMENTS = 2048

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    compiled: SQLCompiler
    # binds rendered per call: IN lists (``bindparam(expanding=True)``), literal-executed
    expanding: frozenset[str]
    binds: Mapping[str, Processor]  # the dialect's bind processors, by bind name
    results: tuple[Processor | None, ...] | None  # per selected column; None: none needed


class Statements:
    """The compiled forms of Core statements for one dialect, made once each."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._found: dict[ClauseElement, _Compiled] = {}
        self._lock = threading.Lock()

    def rows(
        self, connection: Connection, statement: ClauseElement, params: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """The rows ``statement`` selects, in the transaction ``connection`` is in."""
        cursor = connection.connection.cursor()
        try:
            found = self.run(cursor, statement, params)
            rows = list(cursor.fetchall())
        except self.dialect.loaded_dbapi.Error as error:
            sql = self._compiled(statement).compiled.string  # compiled before it could fail
            raise _as_sqlalchemy(self.dialect, sql, error) from error
        finally:
            cursor.close()
        if found.results is None:
            return rows
        processors = found.results
        return [
            tuple(
                value if p is None else p(value) for p, value in zip(processors, row, strict=True)
            )
            for row in rows
        ]

    def run(self, cursor: Any, statement: ClauseElement, params: Mapping[str, Any]) -> _Compiled:
        """Execute ``statement`` with ``params`` on the driver's ``cursor``."""
        found = self._compiled(statement)
        compiled = found.compiled
        if found.expanding:
            state = compiled.construct_expanded_state(_each_processed(found, params))
            sql = state.statement
            values: MutableMapping[str, Any] = dict(state.parameters)
            positions: Sequence[str] | None = state.positiontup
        else:
            sql, values = compiled.string, compiled.construct_params(params)
            positions = compiled.positiontup
        for name, processor in found.binds.items():
            if name in values and name not in found.expanding:
                values[name] = processor(values[name])
        if compiled.positional and positions is not None:
            cursor.execute(sql, tuple(values[name] for name in positions))
        else:
            cursor.execute(sql, values)
        return found

    def _compiled(self, statement: ClauseElement) -> _Compiled:
        found = self._found.get(statement)
        if found is None:
            found = self._compile(statement)
            with self._lock:
                if len(self._found) >= MAX_STATEMENTS:
                    self._found.clear()
                self._found[statement] = found
        return found

    def _compile(self, statement: ClauseElement) -> _Compiled:
        compiled = statement.compile(dialect=self.dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {statement!r}")
        expanding = frozenset(
            name for name, bind in compiled.binds.items() if bind.expanding or bind.literal_execute
        )
        binds = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(self.dialect).bind_processor(self.dialect))
        }
        return _Compiled(compiled, expanding, binds, self._results(statement))

    def _results(self, statement: ClauseElement) -> tuple[Processor | None, ...] | None:
        """The dialect's result processors of the selected columns (e.g. a timezone-aware
        ``DateTime`` on SQLite), or None when no column has one."""
        if not isinstance(statement, Select):
            return None
        processors = tuple(
            column.type.dialect_impl(self.dialect).result_processor(self.dialect, None)
            for column in statement.selected_columns
        )
        return processors if any(p is not None for p in processors) else None


_BY_DIALECT: weakref.WeakKeyDictionary[Dialect, Statements] = weakref.WeakKeyDictionary()
_BY_DIALECT_LOCK = threading.Lock()


def statements_for(dialect: Dialect) -> Statements:
    """The one :class:`Statements` of ``dialect`` (each engine has its own dialect object)."""
    found = _BY_DIALECT.get(dialect)
    if found is None:
        with _BY_DIALECT_LOCK:
            found = _BY_DIALECT.setdefault(dialect, Statements(dialect))
    return found


def select_rows(
    connection: Connection, statement: ClauseElement, params: Mapping[str, Any] | None = None
) -> list[Sequence[Any]]:
    """The rows ``statement`` selects, within ``connection``'s transaction."""
    return statements_for(connection.dialect).rows(connection, statement, params or {})


def _each_processed(found: _Compiled, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """``params`` with each item of an expanding bind's list through the bind's processor."""
    lists = [name for name in found.expanding if name in found.binds and name in params]
    if not lists:
        return params
    return {**params, **{name: [found.binds[name](v) for v in params[name]] for name in lists}}


def _as_sqlalchemy(dialect: Dialect, sql: str, error: Exception) -> StatementError:
    """The driver's error as SQLAlchemy raises it (``OperationalError``, ``IntegrityError``
    …, the driver's own as ``orig``), so callers handle one family whichever way a statement
    ran. Parameters stay out of the message: they are patients' data."""
    return DBAPIError.instance(
        sql,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        dialect=dialect,
    )
