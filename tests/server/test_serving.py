"""The allocator settings ``dicomite serve`` gives its worker processes (serving.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicomite.server import serving
from tests.fixtures.server import make_server


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _environment(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().split("=", 1) for e in entries if b"=" in e)


@pytest.fixture
def start_methods(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The start methods asked for, without changing this test process's own."""
    asked: list[str] = []
    monkeypatch.setattr(
        serving.multiprocessing,
        "set_start_method",
        lambda method, force=False: asked.append(method),
    )
    for name in serving.ALLOCATOR_ENVIRONMENT:
        # setenv first, so that what the test sets is removed again afterwards
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return asked


def test_workers_are_spawned_with_the_allocator_settings(start_methods: list[str]) -> None:
    serving.prepare_worker_environment()

    assert start_methods == ["spawn"]
    for name, value in serving.ALLOCATOR_ENVIRONMENT.items():
        assert os.environ[name] == value


def test_a_value_the_user_set_is_kept(
    start_methods: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1234")

    serving.prepare_worker_environment()

    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "1234"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_the_worker_processes_of_dicomite_serve_start_with_them(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    server.start()
    try:
        assert server.process is not None
        workers = _children(server.process.pid)
        assert workers
        for pid in workers:
            environment = _environment(pid)
            for name, value in serving.ALLOCATOR_ENVIRONMENT.items():
                assert environment.get(name) == value, (pid, name)
    finally:
        server.stop()
