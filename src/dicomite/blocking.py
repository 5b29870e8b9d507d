"""The one blocking pool: how work that waits or burns the CPU leaves the event loop.

The threading rule (the README's "Threading" section says the same):

- On the event loop: reading requests and sending responses, parsing, checking bearer tokens
  against keys held in memory (reloaded by a short read every few minutes), and the token
  requests of secret clients on SQLite: in-memory caches, one indexed row, an HMAC and a
  signature; the sign-in log row is queued for its writer thread (``TokenService.blocks``).
- In this pool, through :func:`run_blocking` (or :func:`start_blocking` and :func:`finished`):
  every database write, every password hash, file and blob I/O, pixel work, Graph handlers and
  portal pages.
- Reads of the index (QIDO, metadata, WADO lookups, change feed) go through
  ``Store.read_index``: on SQLite on the event loop within a 20 ms budget, then in this pool;
  on PostgreSQL in this pool.
- No other thread pool: nothing calls ``anyio.to_thread``, Starlette's ``run_in_threadpool``
  or ``run_in_executor``, and no route is a plain function (Starlette would run it in anyio's
  pool); ``tests/test_blocking.py`` checks both. Long-lived background threads (the sign-in
  log writer, the STOW sweeper) are threads of their own, not pool work.

Why this pool rather than anyio's: STOW starts a part's commit here and collects it later
(:func:`start_blocking` returns a plain ``concurrent.futures.Future`` the event loop can check
without a wake-up), and a hop costs no more CPU, less when calls overlap (measured: about
125 µs each way one call at a time; with eight at once 66 µs here, 101 µs through
``anyio.to_thread.run_sync``, which wraps the same hand-off in a capacity limiter, cancel scopes
and run-variable lookups). The promise is anyio's: once started, a call is waited for even
when its caller is cancelled meanwhile, so a caller never outlives what it started (the
cancellation arrives at its next checkpoint).
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
