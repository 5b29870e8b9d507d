"""Where the DICOMweb routes run their index reads."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from dicomite.dicom.http.routes import _Api
from tests.fixtures.loops import run_async


def _api(*, sqlite: bool) -> _Api:
    service = SimpleNamespace(
        public_url="https://localhost", store=SimpleNamespace(is_sqlite=sqlite)
    )
    return _Api(service, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize("sqlite", [True, False])
def test_index_reads_run_on_the_loop_for_sqlite_and_in_a_thread_for_postgresql(
    sqlite: bool,
) -> None:
    async def read() -> tuple[threading.Thread, threading.Thread]:
        loop_thread = threading.current_thread()
        return loop_thread, await _api(sqlite=sqlite)._read_index(threading.current_thread)

    loop_thread, reader = run_async(read)
    assert (reader is loop_thread) is sqlite


def test_an_index_read_error_reaches_the_caller() -> None:
    def failing(message: str) -> None:
        raise LookupError(message)

    for sqlite in (True, False):
        with pytest.raises(LookupError, match="gone"):
            run_async(_api(sqlite=sqlite)._read_index, failing, "gone")
