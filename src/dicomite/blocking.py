"""Blocking calls (files, the database) from the event loop: one hop to a worker thread each.

``anyio.to_thread.run_sync`` wraps the same hand-off to a thread pool in a capacity limiter,
cancel scopes and run-variable lookups: about twice the CPU of asyncio's ``run_in_executor``
per call. STOW makes one hop per stored instance, so its hops are made here the lean way,
with the same promise as anyio's default: once started, the call is waited for even when the
caller is cancelled meanwhile, so a caller never outlives what it started (the cancellation
arrives at its next checkpoint). The read routes that use a thread stay on anyio (QIDO on
SQLite uses none): many short calls from several connections, QIDO measured about 10 % slower
through this pool (anyio gives each call to the thread that went idle last; here any idle
thread may take it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple

import anyio

T = TypeVar("T")
Args = TypeVarTuple("Args")
THREADS = 40  # as many as anyio lends by default
_pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="dicomite-blocking")


async def run_blocking(function: Callable[[*Args], T], *args: *Args) -> T:
    """``function(*args)`` in a worker thread; its result or its exception."""
    return await finished(start_blocking(function, *args))


def start_blocking(function: Callable[[*Args], T], *args: *Args) -> Future[T]:
    """Start ``function(*args)`` in a worker thread; wait for it with :func:`finished`.

    A plain ``concurrent.futures.Future``: a call that has ended by the time the caller looks
    (``done()``) costs the event loop no wake-up, as ``run_in_executor``'s asyncio future does
    for every call. STOW checks its parts' commits that way while the body keeps arriving."""
    return _pool.submit(function, *args)


async def finished(future: Future[T]) -> T:
    """What a started call returned or raised, once it ended; never cancelled before."""
    if future.done():
        return future.result()
    with anyio.CancelScope(shield=True):  # anyio's cancellation: delivered after
        # asyncio's own (Task.cancel) can still end the wait, but never the call itself
        result = await asyncio.shield(asyncio.wrap_future(future))
    return result
