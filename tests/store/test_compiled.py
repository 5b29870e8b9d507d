"""``store.compiled``: Core statements compiled once and run on the transaction's driver cursor
return what ``Connection.execute`` returns for them (the oracle), with SQLAlchemy's bind and
result processing, IN lists of any length, and the driver's errors raised as SQLAlchemy's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from dicomite.bootstrap import Context
from dicomite.store import compiled
from dicomite.store.compiled import Statements, select_rows, statements_for
from dicomite.store.tables import DicomChange

CHANGES: Table = DicomChange.__table__  # type: ignore[assignment]
START = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)

BY_SOPS = (
    select(CHANGES.c.sequence, CHANGES.c.timestamp, CHANGES.c.sop_uid)
    .where(CHANGES.c.sop_uid.in_(bindparam("sops", expanding=True)))
    .order_by(CHANGES.c.sequence)
)
SINCE = (
    select(CHANGES.c.timestamp, CHANGES.c.action)
    .where(CHANGES.c.timestamp >= bindparam("since"), CHANGES.c.action == "create")
    .order_by(CHANGES.c.sequence)
    .limit(bindparam("limit"))
)
TIMES_IN = select(func.count()).where(CHANGES.c.timestamp.in_(bindparam("times", expanding=True)))


def _filled(context: Context) -> None:
    rows = [
        {
            "timestamp": START + timedelta(minutes=n),
            "action": "create" if n % 3 else "delete",
            "state": "current",
            "study_uid": "1.2",
            "series_uid": "1.2.3",
            "sop_uid": f"1.2.3.{n}",
        }
        for n in range(12)
    ]
    with context.store.transaction(write=True) as connection:
        connection.execute(insert(CHANGES), rows)


def _both(context: Context, statement: Any, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    with context.store.transaction() as connection:
        oracle = [tuple(row) for row in connection.execute(statement, params)]
        ours = [tuple(row) for row in select_rows(connection, statement, params)]
    return oracle, ours


@pytest.mark.parametrize("count", [0, 1, 5, 12])
def test_in_lists_of_any_length_match_execute(context: Context, count: int) -> None:
    _filled(context)
    sops = [f"1.2.3.{n}" for n in range(count)] or ["none"]
    oracle, ours = _both(context, BY_SOPS, {"sops": sops})
    assert ours == oracle
    assert len(ours) == count
    # the result processor made the stored timestamps timezone-aware again
    assert all(row[1].tzinfo is not None for row in ours)


def test_bound_datetimes_go_through_the_bind_processor(context: Context) -> None:
    _filled(context)
    since = START + timedelta(minutes=4)
    oracle, ours = _both(context, SINCE, {"since": since, "limit": 3})
    assert ours == oracle
    assert [row[0] for row in ours] == [START + timedelta(minutes=n) for n in (4, 5, 7)]
    # each item of an IN list of datetimes too
    times = [START + timedelta(minutes=n) for n in (1, 2, 11)]
    assert _both(context, TIMES_IN, {"times": times}) == ([(3,)], [(3,)])


def test_each_statement_is_compiled_once(context: Context) -> None:
    _filled(context)
    statements = statements_for(context.store.engine.dialect)
    made: list[Any] = []
    compile_ = Statements._compile

    def counting(self: Statements, statement: Any) -> Any:
        made.append(statement)
        return compile_(self, statement)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Statements, "_compile", counting)
        statements._found.clear()
        for sops in (["1.2.3.1"], ["1.2.3.2", "1.2.3.3"], ["1.2.3.4"]):
            _both(context, BY_SOPS, {"sops": sops})
    assert made == [BY_SOPS]


def test_the_cache_is_bounded(context: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "MAX_STATEMENTS", 3)
    statements = statements_for(context.store.engine.dialect)
    statements._found.clear()
    with context.store.transaction() as connection:
        for n in range(10):
            select_rows(connection, select(CHANGES.c.sequence).limit(n + 1), {})
            assert len(statements._found) <= 3


def test_driver_errors_are_raised_as_sqlalchemy_raises_them(context: Context) -> None:
    broken = select(CHANGES.c.sequence).where(func.no_such_function(CHANGES.c.sequence) > 1)
    with (
        context.store.transaction() as connection,
        pytest.raises((OperationalError, ProgrammingError)) as raised,
    ):
        select_rows(connection, broken, {})
    assert raised.value.orig is not None  # the driver's own error, kept
    assert "no_such_function" in str(raised.value)
