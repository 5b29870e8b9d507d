"""Where the DICOMweb routes run their index reads: through ``Store.read_index`` (on SQLite on
the event loop within a budget, else in the blocking pool; tests/store/test_read_index.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from dicomite.dicom.http.routes import _Api
from dicomite.dicom.index import qido
from dicomite.dicom.index.partitions import UNPARTITIONED
from dicomite.dicom.index.schema import Level
from dicomite.store.db import Store
from tests.fixtures.loops import on_event_loop, run_async


@pytest.mark.parametrize("sqlite", [True, False], ids=["sqlite", "postgresql"])
def test_a_search_is_an_index_read(
    sqlite: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop: list[bool] = []

    def search(_api: _Api, _scope: qido.Scope, _query: qido.Query) -> qido.Found:
        on_loop.append(on_event_loop())
        return qido.Found([], [])

    monkeypatch.setattr(_Api, "_search", search)
    store = Store(f"sqlite:///{tmp_path / 'index.db'}")
    monkeypatch.setattr(store, "is_sqlite", sqlite)
    service = SimpleNamespace(public_url="https://localhost", store=store)
    handler = _Api(service, 2).search(Level.STUDY)  # type: ignore[arg-type]
    scope = {"type": "http", "method": "GET", "query_string": b"", "headers": [], "path_params": {}}
    response = run_async(handler, Request(scope), UNPARTITIONED)
    assert response.status_code == 204 and on_loop == [sqlite]
