"""Blocking calls from the event loop: results, errors, and cancellation that waits for them."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from dicomite.blocking import finished, run_blocking, start_blocking
from tests.fixtures.loops import run_async


def test_runs_in_another_thread_and_returns_its_result() -> None:
    async def main() -> tuple[int, int, int]:
        total, thread = await run_blocking(lambda a, b: (a + b, threading.get_ident()), 2, 3)
        return total, thread, threading.get_ident()

    total, thread, caller = run_async(main)
    assert total == 5 and thread != caller


def test_raises_what_the_call_raised() -> None:
    def fail() -> None:
        raise OSError(28, "No space left on device")

    async def main() -> None:
        await run_blocking(fail)

    with pytest.raises(OSError, match="No space left"):
        run_async(main)


def test_a_started_call_is_awaited_later_and_several_run_at_once() -> None:
    gate = threading.Barrier(3, timeout=5)  # each call waits for the other two

    async def main() -> list[int]:
        futures = [start_blocking(gate.wait) for _ in range(3)]
        results = [await finished(f) for f in futures]
        return [*results, await finished(futures[0])]  # a done one, again

    results = run_async(main)
    assert sorted(results[:3]) == [0, 1, 2] and results[3] == results[0]


def test_a_cancelled_caller_waits_for_the_call_to_end() -> None:
    ended: list[float] = []

    def slow() -> None:
        time.sleep(0.3)
        ended.append(time.monotonic())

    cancelled_at: list[float] = []

    async def caller() -> None:
        try:
            await run_blocking(slow)
        finally:
            cancelled_at.append(time.monotonic())

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(caller)
            await anyio.sleep(0.05)
            group.cancel_scope.cancel()

    run_async(main)
    assert ended and cancelled_at and ended[0] <= cancelled_at[0]


def test_an_ended_call_is_seen_done_without_the_event_loop_running() -> None:
    ended = threading.Event()

    async def main() -> tuple[bool, int]:
        future = start_blocking(lambda: ended.set() or 7)
        assert ended.wait(5)  # blocks the loop: nothing it would have to run can run
        for _ in range(500):  # the pool sets the result just after the call returns
            if future.done():
                break
            time.sleep(0.001)
        return future.done(), await finished(future)

    assert run_async(main) == (True, 7)
