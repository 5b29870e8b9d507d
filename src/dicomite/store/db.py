"""Engine, transactions and sessions for SQLite (embedded default) and PostgreSQL.

Two styles reach the database, both through :meth:`Store.transaction`: ORM sessions
(:meth:`Store.read`, :meth:`Store.write`) for the directory and the portal, and SQLAlchemy Core
statements on the transaction's ``Connection`` for the DICOM index, where a session's unit of
work would cost more than the statements. Core statements are compiled once per shape and then
run from the engine's compiled cache. The token endpoint's one-value probe (:meth:`Store.scalar`)
runs a Core statement too, compiled by SQLAlchemy once and executed on a kept driver
connection: SQL is never written or rewritten by hand.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, TypeVar, TypeVarTuple, cast

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ClauseElement

from dicomite.blocking import run_blocking
from dicomite.store.compiled import statements_for

# Set while a write transaction begins, so SQLite can BEGIN IMMEDIATE.
_opening_write = ContextVar("opening_write", default=False)
_SQLITE_BUSY_SECONDS = 30
_SQLITE_MMAP_BYTES = 1 << 30
_PG_EXCLUSIVE_LOCK = 0x0D1C0118
_AUTOCOMMIT = "AUTOCOMMIT"
T = TypeVar("T")
Args = TypeVarTuple("Args")

# How long an index read may hold the event loop (README, Threading): SQLite interrupts it
# past this, and it starts again in the blocking pool. Most reads take well under a
# millisecond, less than a hop to the pool costs; a read whose time grows with the index (a
# filter no index answers, a large offset) never holds up the loop's other requests for longer.
LOOP_READ_BUDGET_SECONDS = 0.02
# SQLite calls the progress handler every this many virtual-machine instructions (under a
# millisecond): each call takes the GIL back, so a read is checked often enough, not more.
_PROGRESS_STEPS = 100_000
_loop_read = threading.local()  # .deadline: monotonic time, set only around a loop read


class _OverBudget(Exception):
    """A read on the event loop ran past its budget and was interrupted."""


def _past_deadline() -> int:
    """SQLite's progress handler: nonzero interrupts the statement (SQLITE_INTERRUPT)."""
    deadline: float | None = getattr(_loop_read, "deadline", None)
    return int(deadline is not None and time.monotonic() > deadline)


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
        dbapi_connection.set_progress_handler(_past_deadline, _PROGRESS_STEPS)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock up front, so two processes never deadlock
        # upgrading read transactions; reads are short, so the cost is small.
        if connection.get_execution_options().get("isolation_level") == _AUTOCOMMIT:
            return  # the probe connection (Store.scalar): each statement is its own
        sql = "BEGIN IMMEDIATE" if _opening_write.get() else "BEGIN"
        # On the driver's connection: through Connection.exec_driver_sql, BEGIN took 50 us,
        # as long as the rest of a transaction's setup and teardown together (QIDO runs one).
        driver = cast(sqlite3.Connection, connection.connection.driver_connection)
        try:
            driver.execute(sql)
        except sqlite3.Error as error:  # raised as SQLAlchemy raises the driver's errors
            raise DBAPIError.instance(sql, None, error, sqlite3.Error) from error

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
    """Owns the engine; hands out transactions, as Core connections or ORM sessions."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = create_store_engine(self.url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._probe: Any = None  # a pooled DBAPI connection (Engine.raw_connection)
        self._probe_lock = threading.Lock()

    @contextmanager
    def transaction(self, *, write: bool = False, exclusive: bool = False) -> Iterator[Connection]:
        """The one transaction helper: a pooled connection in a transaction, rolled back when
        the block raises; at its end a ``write`` commits, a read is rolled back. On PostgreSQL
        a read runs each statement on its own (autocommit), which READ COMMITTED makes the same.

        A ``write`` takes SQLite's write lock at BEGIN (``BEGIN IMMEDIATE``), so two processes
        never deadlock upgrading read transactions. ``exclusive`` writes run one at a time
        across every process and host (check-then-insert seeding such as the bootstrap): on
        SQLite every write already does, on PostgreSQL an advisory lock does it."""
        with self.engine.connect() as connection:
            if not write and not self.is_sqlite:
                # Under READ COMMITTED, PostgreSQL's default, each statement of a transaction
                # takes its own snapshot, so a read sees the same in autocommit, without a
                # BEGIN and a ROLLBACK: two of a QIDO request's four round trips (with the
                # pool's ping). The pool sets the connection back when it is returned.
                connection.execution_options(isolation_level=_AUTOCOMMIT)
            with write_intent() if write else nullcontext():
                began = connection.begin()
            if exclusive and not self.is_sqlite:
                connection.execute(select(func.pg_advisory_xact_lock(_PG_EXCLUSIVE_LOCK)))
            yield connection
            if write:
                began.commit()
            # Otherwise closing the connection rolls the transaction back, once: the pool then
            # skips its own reset (a second rollback).

    async def read_index(self, read: Callable[[*Args], T], *args: *Args) -> T:
        """``read(*args)``, a read of the index: on SQLite first on the event loop, within
        ``LOOP_READ_BUDGET_SECONDS``, else (over budget, or on PostgreSQL, where reads wait on
        the network) in the blocking pool."""
        if self.is_sqlite:
            try:
                return _within_budget(read, *args)
            except _OverBudget:
                pass
        return await run_blocking(read, *args)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._session(write=False) as session:
            yield session

    @contextmanager
    def write(self, *, exclusive: bool = False) -> Iterator[Session]:
        """An ORM session in a write :meth:`transaction`, flushed and committed at the end."""
        with self._session(write=True, exclusive=exclusive) as session:
            yield session
            session.flush()

    @contextmanager
    def _session(self, *, write: bool, exclusive: bool = False) -> Iterator[Session]:
        with (
            self.transaction(write=write, exclusive=exclusive) as connection,
            # the transaction is the helper's: the session never commits it
            Session(
                connection,
                expire_on_commit=False,
                join_transaction_mode="rollback_only",
                autoflush=write,  # a read never sends a change (on PostgreSQL it would commit)
            ) as session,
        ):
            yield session

    def scalar(self, statement: ClauseElement, params: Mapping[str, Any]) -> Any:
        """One value, read outside any transaction on a driver connection kept for this purpose.

        For probes on hot paths (the token endpoint reads one version number per request): the
        statement is compiled by SQLAlchemy once, for the engine's dialect, and run on the
        driver's own connection in autocommit -- on SQLite 4 us instead of 55 us through
        ``Connection.execute``, on PostgreSQL one round trip without a BEGIN and a COMMIT.
        """
        statements = statements_for(self.engine.dialect)
        errors = self.engine.dialect.loaded_dbapi.Error
        with self._probe_lock:
            for attempt in (1, 2):
                try:
                    if self._probe is None:
                        self._probe = self._open_probe()
                    cursor = self._probe.cursor()
                    statements.run(cursor, statement, params)
                    row = cursor.fetchone()
                    cursor.close()
                    return None if row is None else row[0]
                except errors:  # a broken connection (a restarted server): open another
                    self._close_probe()
                    if attempt == 2:
                        raise
        return None

    def _open_probe(self) -> Any:
        connection = self.engine.raw_connection()
        if not self.is_sqlite:  # psycopg: each statement its own transaction
            connection.driver_connection.autocommit = True  # type: ignore[union-attr]
        return connection

    def _close_probe(self) -> None:
        if self._probe is not None:
            probe, self._probe = self._probe, None
            probe.invalidate()

    def dispose(self) -> None:
        with self._probe_lock:
            self._close_probe()
        self.engine.dispose()


def _within_budget(read: Callable[[*Args], T], *args: *Args) -> T:
    _loop_read.deadline = time.monotonic() + LOOP_READ_BUDGET_SECONDS
    try:
        return read(*args)
    except OperationalError as error:
        if isinstance(error.orig, sqlite3.OperationalError) and _past_deadline():
            raise _OverBudget from error
        raise
    finally:
        _loop_read.deadline = None


def sqlite_foreign_keys(connection: Connection, *, enforced: bool) -> None:
    """Turn SQLite's foreign-key enforcement on or off for this connection. The pragma is a
    no-op inside a transaction (https://www.sqlite.org/foreignkeys.html §2), so it goes to the
    driver connection directly, before SQLAlchemy begins one."""
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("the SQLite connection is closed")
    driver.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")


def sqlite_dangling_reference(connection: Connection) -> str | None:
    """The table of a row whose foreign key refers to nothing, if any (foreign_key_check)."""
    row = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
    return None if row is None else str(row[0])
