"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import operator
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import Engine, TableClause, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from dicomite.store.tables import UTCDateTime

# Set while a write session opens its transaction, so SQLite can BEGIN IMMEDIATE.
_opening_write = ContextVar("opening_write", default=False)
_SQLITE_BUSY_SECONDS = 30
_SQLITE_MMAP_BYTES = 1 << 30
_PG_EXCLUSIVE_LOCK = 0x0D1C0118


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs, as users write them without a driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_store_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY_SECONDS}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside one writer across worker processes; busy_timeout makes
        # concurrent writers wait instead of failing with "database is locked".
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        _use_wal(cursor)
        # FULL syncs the WAL at every commit: a response that says "stored" (a STOW index row,
        # a new secret) survives a power loss, not only a crashed process. NORMAL would not.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Reads from the mapped file rather than a pread per page through SQLite's 2 MB cache:
        # a scan of the 10,000 studies of a 100,000-instance index takes half the time.
        cursor.execute(f"PRAGMA mmap_size={_SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front, so two processes never deadlock
        # upgrading read transactions; reads are short, so the cost is small.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _opening_write.get() else "BEGIN")

    return engine


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (a setting stored in the file, so this happens once).

    Processes opening a new file together race for the switch, and SQLite reports the loser's
    SQLITE_BUSY at once instead of calling the busy handler; so wait and retry here.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_SECONDS
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def write_intent() -> Iterator[None]:
    """Transactions begun inside take SQLite's write lock at BEGIN (BEGIN IMMEDIATE)."""
    token = _opening_write.set(True)
    try:
        yield
    finally:
        _opening_write.reset(token)


class Store:
    """Owns the engine; hands out sessions for reads and writes."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = create_store_engine(self.url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._probe: Any = None
        self._probe_lock = threading.Lock()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def read_cursor(self) -> Iterator[DriverCursor]:
        """A read transaction on a pooled DBAPI connection, without a session: for reads on
        hot paths (QIDO), where a session's setup and teardown cost more than the query."""
        with self._driver_transaction("BEGIN") as cursor:  # one snapshot for all reads
            yield cursor

    @contextmanager
    def write_cursor(self) -> Iterator[DriverCursor]:
        """A write transaction on a pooled DBAPI connection, without a session, committed when
        the block ends (rolled back when it raises): for the STOW index batch, where a
        session's setup and commit cost as much as the statements."""
        with self._driver_transaction("BEGIN IMMEDIATE") as cursor:  # see _on_begin
            yield cursor
            cursor.commit()

    @contextmanager
    def _driver_transaction(self, sqlite_begin: str) -> Iterator[DriverCursor]:
        connection = self.engine.raw_connection()
        try:
            with DriverCursor(connection.cursor(), self.engine.dialect) as cursor:
                if self.is_sqlite:  # autocommit (see _on_connect): the transaction is ours
                    cursor.execute(sqlite_begin, ())
                yield cursor
        finally:
            try:
                connection.rollback()  # nothing left to undo after a commit
            except Exception:  # a broken connection (a restarted server): not pooled again
                connection.invalidate()
            connection.close()

    @contextmanager
    def write(self, *, exclusive: bool = False) -> Iterator[Session]:
        """A transaction that commits when the block ends. ``exclusive`` ones run one at a
        time across every process and host (check-then-insert seeding such as the bootstrap);
        on SQLite every write is already exclusive, on PostgreSQL an advisory lock does it."""
        with self._sessions() as session:
            with write_intent():
                session.connection()
            if exclusive and not self.is_sqlite:
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_EXCLUSIVE_LOCK})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def autocommit_scalar(self, sql: str, *params: object) -> Any:
        """One value from a raw, autocommit DBAPI connection kept open for this purpose.

        For hot-path probes (the token endpoint reads one version number per request) this
        costs a few microseconds on SQLite and one round trip on PostgreSQL, where an ORM
        session would cost a BEGIN, a ROLLBACK and SQLAlchemy's bookkeeping.
        """
        with self._probe_lock:
            for attempt in (1, 2):
                try:
                    if self._probe is None:
                        self._probe = self._open_probe()
                    cursor = self._probe.cursor()
                    cursor.execute(_paramstyle(sql, self.is_sqlite), params)
                    row = cursor.fetchone()
                    cursor.close()
                    return None if row is None else row[0]
                except Exception:
                    self._close_probe()
                    if attempt == 2:
                        raise
        return None

    def _open_probe(self) -> Any:
        connection = self.engine.raw_connection()
        if not self.is_sqlite:
            connection.driver_connection.autocommit = True  # type: ignore[union-attr]
        return connection

    def _close_probe(self) -> None:
        if self._probe is not None:
            with suppress(Exception):
                self._probe.invalidate()
            self._probe = None

    def insert_rows(self, table: TableClause, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows (each holding every column) through the driver's ``executemany``.

        For append-only logs written in batches: SQLAlchemy's per-row bookkeeping costs several
        times what SQLite spends storing the row.
        """
        columns = list(table.columns)
        values = operator.itemgetter(*(c.name for c in columns))
        dates = [i for i, c in enumerate(columns) if isinstance(c.type, UTCDateTime)]
        with self.write_cursor() as db:
            params = [_with_timestamps(db, values(row), dates) for row in rows]
            db.executemany(insert_sql(table.name, [c.name for c in columns]), params)

    def dispose(self) -> None:
        self._close_probe()
        self.engine.dispose()


class DriverCursor:
    """A DBAPI cursor, for hot paths of a few statements whose SQLAlchemy bookkeeping (per
    statement, and per row of an ``executemany``) costs several times what the database
    spends. SQL is written with ``?`` placeholders. The driver's errors are raised as
    SQLAlchemy raises them (``IntegrityError``, ``OperationalError`` …, the driver's error as
    ``orig``), so callers handle one family of errors whichever way a statement ran."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self.sqlite = dialect.name == "sqlite"
        self._cursor = cursor
        self._dialect = dialect

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        with suppress(self._dialect.loaded_dbapi.Error):  # of a broken connection: nothing held
            self._cursor.close()

    def rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        self.execute(sql, params)
        return list(self._cursor.fetchall())

    def execute(self, sql: str, params: Sequence[Any]) -> None:
        with self._translated(sql):
            self._cursor.execute(_paramstyle(sql, self.sqlite), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._translated(sql):
            self._cursor.executemany(_paramstyle(sql, self.sqlite), rows)

    def commit(self) -> None:
        with self._translated("COMMIT"):
            self._cursor.connection.commit()

    @contextmanager
    def _translated(self, sql: str) -> Iterator[None]:
        driver_error = self._dialect.loaded_dbapi.Error
        try:
            yield
        except driver_error as error:
            # Values stay out of the message: they are patients' data.
            raise DBAPIError.instance(
                sql, None, error, driver_error, hide_parameters=True, dialect=self._dialect
            ) from error

    def timestamp(self, value: datetime) -> Any:
        """``value`` as a ``UTCDateTime`` column stores it."""
        return _sqlite_datetime(value) if self.sqlite else value.astimezone(UTC)


def _with_timestamps(db: DriverCursor, row: tuple[Any, ...], dates: list[int]) -> list[Any]:
    """``row`` with the values at ``dates`` as their ``UTCDateTime`` columns store them."""
    values = list(row)
    for index in dates:
        if values[index] is not None:
            values[index] = db.timestamp(values[index])
    return values


def placeholders(count: int) -> str:
    """``count`` ``?`` placeholders for a value list; ``NULL`` for none, which nothing equals
    (so ``IN ()`` of no values matches nothing, as SQLAlchemy's empty ``in_`` does)."""
    return ",".join("?" * count) or "NULL"


def insert_sql(table: str, columns: Sequence[str], returning: str = "") -> str:
    """``INSERT`` of one row of ``columns`` with ``?`` placeholders. The names come from table
    definitions, never from requests; every value is a bound parameter."""
    sql = f"INSERT INTO {table} ({','.join(columns)}) VALUES ({placeholders(len(columns))})"  # noqa: S608
    return f"{sql} RETURNING {returning}" if returning else sql


def _sqlite_datetime(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format, in UTC (see tables.UTCDateTime)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _paramstyle(sql: str, sqlite: bool) -> str:
    """Raw SQL is written with ``?``; psycopg wants ``%s``."""
    return sql if sqlite else sql.replace("?", "%s")
