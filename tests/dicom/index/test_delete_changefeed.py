"""DELETE (204/404/400) and the change feed (v1 and v2 parameters, states, metadata)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from pydicom.uid import generate_uid

from tests.fixtures.dicom import make_dataset, multipart, stow_headers, to_bytes


def store(client: httpx.Client, *datasets: object, method: str = "POST") -> None:
    body = multipart(*(to_bytes(d) for d in datasets))  # type: ignore[arg-type]
    assert (
        client.request(method, "/studies", content=body, headers=stow_headers()).status_code == 200
    )


def test_delete_instance_series_study(writer: httpx.Client) -> None:
    study, series = generate_uid(), generate_uid()
    a, b = make_dataset(study=study, series=series), make_dataset(study=study, series=series)
    c = make_dataset(study=study)
    store(writer, a, b, c)
    base = f"/studies/{study}"
    assert writer.delete(f"{base}/series/{series}/instances/{a.SOPInstanceUID}").status_code == 204
    assert writer.delete(f"{base}/series/{series}/instances/{a.SOPInstanceUID}").status_code == 404
    assert writer.get(f"{base}/series/{series}/instances/{a.SOPInstanceUID}").status_code == 404
    assert (
        writer.get(f"{base}/series/{series}/instances/{b.SOPInstanceUID}/metadata").status_code
        == 200
    )
    assert writer.delete(f"{base}/series/{series}").status_code == 204
    assert writer.get(f"{base}/series", params={"SeriesInstanceUID": series}).status_code == 204
    assert writer.delete(base).status_code == 204
    assert writer.get(base).status_code == 404
    assert writer.get("/studies", params={"StudyInstanceUID": study}).status_code == 204
    assert writer.delete(base).status_code == 404
    assert writer.delete("/studies/not$valid").status_code == 400
    store(writer, a)  # deleted instances can be stored again


def _entries_for(feed: list[dict[str, object]], sop: str) -> list[dict[str, object]]:
    return [e for e in feed if e["SopInstanceUid"] == sop]


def test_change_feed_v1(writer: httpx.Client) -> None:
    latest = writer.get("/changefeed/latest", params={"includemetadata": "false"}).json()
    start = latest["Sequence"] if latest else 0
    dataset = make_dataset()
    store(writer, dataset)
    path = f"/studies/{dataset.StudyInstanceUID}"
    assert writer.delete(path).status_code == 204
    feed = writer.get("/changefeed", params={"offset": start, "limit": 100}).json()
    mine = _entries_for(feed, dataset.SOPInstanceUID)
    assert [(e["Action"], e["State"]) for e in mine] == [
        ("create", "deleted"),
        ("delete", "deleted"),
    ]
    assert set(mine[0]) == {
        "Sequence",
        "StudyInstanceUid",
        "SeriesInstanceUid",
        "SopInstanceUid",
        "Action",
        "Timestamp",
        "State",
        "Metadata",
    }
    assert writer.get("/changefeed", params={"limit": 101}).status_code == 400
    assert writer.get("/changefeed", params={"includemetadata": "maybe"}).status_code == 400


def test_change_feed_v2_window_and_replaced_state(writer_v2: httpx.Client) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    dataset = make_dataset()
    store(writer_v2, dataset, method="PUT")
    store(writer_v2, dataset, method="PUT")
    params = {"startTime": before.isoformat(), "limit": 200}
    feed = writer_v2.get("/changefeed", params=params).json()
    mine = _entries_for(feed, dataset.SOPInstanceUID)
    assert [e["State"] for e in mine] == ["replaced", "current"]
    assert mine[1]["Metadata"]["00080018"]["Value"] == [dataset.SOPInstanceUID]
    future = {"startTime": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    assert writer_v2.get("/changefeed", params=future).json() == []
    assert writer_v2.get("/changefeed", params={"limit": 201}).status_code == 400
    assert writer_v2.get("/changefeed", params={"startTime": "yesterday"}).status_code == 400
