"""Operation records: leases decide which process runs a step, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from datetime import timedelta

from sqlalchemy import update

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.dicom.operations import records
from dicomite.store.tables import DicomOperation

STATE = {"cursor": 0, "done": 0, "total": 0}


def _started(context: Context) -> str:
    with context.store.transaction(write=True) as db:
        return records.create(db, "reindex", ["extendedquerytags/00101010"], STATE, utcnow())


def _set(context: Context, operation_id: str, **values: object) -> None:
    with context.store.transaction(write=True) as db:
        db.execute(update(DicomOperation).where(DicomOperation.id == operation_id).values(**values))


def test_one_holder_at_a_time_until_its_lease_lapses(context: Context) -> None:
    operation_id, now = _started(context), utcnow()
    first, second = records.owner_id(), records.owner_id()
    claimed = records.claim(context.store, first, now)
    assert claimed is not None and claimed.id == operation_id and claimed.state == STATE
    assert records.claim(context.store, second, now) is None
    assert records.claim(context.store, first, now) is not None  # its own lease, renewed
    assert records.claim(context.store, second, now + records.LEASE * 2) is not None
    with context.store.transaction(write=True) as db:
        assert not records.hold(db, claimed, first)  # taken over: its next step is not written
        assert records.hold(db, claimed, second)


def test_the_lease_of_a_dead_process_of_this_host_is_taken_over_at_once(context: Context) -> None:
    operation_id = _started(context)
    dead = f"{socket.gethostname()}/999999999/gone"
    elsewhere = "another-host/1/alive"
    until = utcnow() + timedelta(hours=1)
    _set(context, operation_id, lease_owner=elsewhere, lease_until=until)
    assert records.claim(context.store, records.owner_id(), utcnow()) is None
    _set(context, operation_id, lease_owner=dead, lease_until=until)
    assert records.claim(context.store, records.owner_id(), utcnow()) is not None


def test_a_finished_operation_is_not_claimed_and_reads_as_each_version_says(
    context: Context,
) -> None:
    operation_id, owner = _started(context), records.owner_id()
    claimed = records.claim(context.store, owner, utcnow())
    assert claimed is not None
    with context.store.transaction(write=True) as db:
        records.save(db, claimed, owner, utcnow(), status=records.SUCCEEDED, percent_complete=100)
    assert records.claim(context.store, owner, utcnow()) is None
    with context.store.transaction() as db:
        found = records.get(db, operation_id)
    assert found is not None and not found.running
    v1, v2 = found.as_json("https://h/dicom/v1", 1), found.as_json("https://h/dicom/v2", 2)
    assert (v1["status"], v2["status"]) == ("completed", "succeeded")
    assert v2["resources"] == ["https://h/dicom/v2/extendedquerytags/00101010"]
    assert v2["createdTime"].endswith("Z") and v2["operationId"] == operation_id


def test_operation_ids_in_any_guid_form() -> None:
    assert records.parse_id("{A99A8B51-78D4-4FD9-B004-B6C0BCACCF1D}") == (
        "a99a8b5178d44fd9b004b6c0bcaccf1d"
    )
    assert records.parse_id("a99a8b51") is None
