"""Run functions in several spawned processes at once, the way separate hosts or workers would.

Targets live here, at module level, so that ``spawn`` children can import them by name.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Barrier
from typing import Any

from dicomite.bootstrap import open_context, prepare
from dicomite.clock import utcnow
from dicomite.identity import directory
from dicomite.settings import Settings


def run_together(
    target: Callable[..., Any], calls: Sequence[tuple[Any, ...]], timeout: float = 180
) -> list[Any]:
    """Start one spawned process per argument tuple, release them together, and return their
    results in order; fail with every child's traceback if any raised."""
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(len(calls))
    results: multiprocessing.Queue[tuple[int, str | None, Any]] = spawn.Queue()
    processes = [
        spawn.Process(target=_call, args=(index, barrier, results, target, args))
        for index, args in enumerate(calls)
    ]
    for process in processes:
        process.start()
    try:
        collected = [results.get(timeout=timeout) for _ in processes]
    except queue.Empty:
        raise AssertionError(f"processes did not finish in {timeout}s") from None
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    failures = [error for _, error, _ in sorted(collected) if error]
    assert not failures, "\n".join(failures)
    return [value for _, _, value in sorted(collected)]


def _call(
    index: int,
    barrier: Barrier,
    results: multiprocessing.Queue[tuple[int, str | None, Any]],
    target: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    try:
        barrier.wait(timeout=120)
        results.put((index, None, target(*args)))
    except BaseException:
        results.put((index, traceback.format_exc(), None))


def prepare_deployment(settings: Settings) -> str:
    context = prepare(settings)
    context.store.dispose()
    return context.tenant_id


def add_applications(settings: Settings, prefix: str, count: int) -> int:
    """One write transaction per application, so the processes interleave as much as they can."""
    context = open_context(settings)
    try:
        for number in range(count):
            with context.store.write() as session:
                name = f"{prefix}-{number}"
                directory.create_application(session, context.tenant_id, utcnow(), name)
    finally:
        context.store.dispose()
    return count
