"""``Store.read_index``: index reads start on the event loop on SQLite, within a time budget
past which SQLite interrupts them and they run again in the blocking pool (README, Threading)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from dicomite.store import db
from dicomite.store.db import Store
from tests.fixtures.loops import on_event_loop, run_async

# Tens of milliseconds of SQLite work: past a zero budget, far under the test's patience.
SLOW = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) "
    "SELECT count(*) FROM n"
)
QUICK = text("SELECT count(*) FROM (SELECT 1 UNION ALL SELECT 2)")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'index.db'}")


def _counting(store: Store, where: list[bool]) -> int:
    where.append(on_event_loop())
    with store.transaction() as connection:
        return int(connection.execute(SLOW).scalar_one())


def test_a_read_within_its_budget_runs_on_the_event_loop(store: Store) -> None:
    where: list[bool] = []

    def quick() -> int:
        where.append(on_event_loop())
        with store.transaction() as connection:
            return int(connection.execute(QUICK).scalar_one())

    async def read() -> int:
        return await store.read_index(quick)

    assert run_async(read) == 2
    assert where == [True]


def test_a_read_past_its_budget_is_interrupted_and_runs_in_the_pool(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "LOOP_READ_BUDGET_SECONDS", 0.0)
    where: list[bool] = []

    async def read() -> int:
        return await store.read_index(_counting, store, where)

    assert run_async(read) == 200000
    assert where == [True, False]  # begun on the loop, interrupted, finished in the pool


def test_a_read_in_the_pool_has_no_budget(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline belongs to the loop's read alone: the same slow read in a worker thread,
    and the loop's next reads, run to the end."""
    monkeypatch.setattr(db, "LOOP_READ_BUDGET_SECONDS", 0.0)
    where: list[bool] = []

    async def reads() -> list[int]:
        return [await store.read_index(_counting, store, where) for _ in range(2)]

    assert run_async(reads) == [200000, 200000]
    assert where == [True, False, True, False]
    with store.transaction() as connection:  # outside the loop: never interrupted
        assert connection.execute(SLOW).scalar_one() == 200000


def test_other_errors_of_a_loop_read_are_not_retried(store: Store) -> None:
    calls: list[bool] = []

    def failing() -> int:
        calls.append(on_event_loop())
        with store.transaction() as connection:
            return int(connection.execute(text("SELECT * FROM no_such_table")).scalar_one())

    async def read() -> int:
        return await store.read_index(failing)

    with pytest.raises(Exception, match="no_such_table"):
        run_async(read)
    assert calls == [True]


def test_postgresql_reads_run_in_the_pool(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "is_sqlite", False)  # reads that wait on the network
    where: list[bool] = []

    async def read() -> int:
        return await store.read_index(_counting, store, where)

    assert run_async(read) == 200000
    assert where == [False]
