"""Worker processes that the parent hands their connections to, the least busy first.

When worker processes share one listening socket, the kernel wakes all of them for a new
connection and the first one awake accepts every connection waiting. A client that opens a few
keep-alive connections at once (an uploader sending requests in parallel, a viewer) then often
has all of them served by one process: one core busy, the others idle, for as long as the
connections last. Here only the parent accepts; it passes each connection (SCM_RIGHTS,
unix(7)) to the worker with the fewest open connections, as Node.js's cluster module does.

Each worker is a uvicorn server without a listening socket of its own: it reads connections
from its channel and serves them with the configured protocol, TLS included. Workers count the
connections they have closed in shared memory; the parent knows how many it handed to each.
A worker that dies is replaced; SIGINT or SIGTERM stops accepting and lets the workers finish
their requests (uvicorn's graceful shutdown); a worker whose parent is gone shuts down too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import sys
from multiprocessing.context import SpawnProcess
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger("uvicorn.error")
_spawn = multiprocessing.get_context("spawn")
_CHECK_SECONDS = 0.5  # how often the parent looks for workers that died
STARTUP_FAILURE = 3  # the exit status of a uvicorn server whose app did not start
Counters = ctypes.Array[ctypes.c_longlong]


class _Stop(Exception):
    """SIGINT or SIGTERM reached the parent."""


class HandedServer(uvicorn.Server):
    """A uvicorn server whose connections arrive on ``channel`` instead of a listening socket."""

    def __init__(
        self, config: uvicorn.Config, channel: socket.socket, closed: Counters, slot: int
    ) -> None:
        super().__init__(config)
        self._channel = channel
        self._closed = closed  # shared: connections each worker has closed
        self._slot = slot
        self._handshakes: set[asyncio.Task[None]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        loop = asyncio.get_running_loop()
        self.servers = []
        self._channel.setblocking(False)
        loop.add_reader(self._channel.fileno(), self._take_connections, loop)
        logger.info("Worker %d ready [%d]", self._slot, os.getpid())
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        with contextlib.suppress(ValueError, OSError):  # already removed when the parent left
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
        self._channel.close()
        await super().shutdown(sockets)

    def _take_connections(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                message, fds, _flags, _address = socket.recv_fds(self._channel, 1, 16)
            except BlockingIOError:
                return
            except OSError:
                message, fds = b"", []
            if not message and not fds:  # the parent is gone: finish what is running
                loop.remove_reader(self._channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                task = loop.create_task(self._serve_connection(loop, socket.socket(fileno=fd)))
                self._handshakes.add(task)
                task.add_done_callback(self._handshakes.discard)

    async def _serve_connection(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                # as asyncio's own servers do: a response's last segment is not held back
                # waiting for the client's delayed acknowledgement (Nagle's algorithm)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.connect_accepted_socket(self._protocol, sock, ssl=self.config.ssl)
        except (OSError, ValueError):  # a failed TLS handshake (SSLError) or a gone client
            sock.close()
            self._count_closed()

    def _protocol(self) -> asyncio.BaseProtocol:
        protocol: Any = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        connection_lost = protocol.connection_lost

        def counted(exc: Exception | None) -> None:
            self._count_closed()
            connection_lost(exc)

        protocol.connection_lost = counted
        return protocol  # type: ignore[no-any-return]

    def _count_closed(self) -> None:
        self._closed[self._slot] += 1


def _worker_main(
    config: uvicorn.Config, channel: socket.socket, closed: Counters, slot: int
) -> None:
    config.configure_logging()
    with contextlib.suppress(KeyboardInterrupt):
        HandedServer(config, channel, closed, slot).run()


def closed_counters(count: int) -> Counters:
    """Connections each worker has closed, in shared memory. No lock: each slot has one writer
    at a time (its worker counts up; the parent resets it only once that worker is gone), and a
    process-shared lock would stay taken for good if a worker were killed holding it, hanging
    the parent at its next read."""
    return _spawn.RawArray(ctypes.c_longlong, count)


class _Worker:
    def __init__(self, process: SpawnProcess, channel: socket.socket) -> None:
        self.process = process
        self.channel = channel
        self.handed = 0  # connections passed to this worker


class Workers:
    """The parent: accepts on ``config``'s socket and hands connections to ``count`` workers."""

    def __init__(self, config: uvicorn.Config, count: int) -> None:
        self.config = config
        self.count = count
        self._closed = closed_counters(count)
        self._workers: list[_Worker | None] = [None] * count
        self._next = 0  # where the search for the least busy worker starts (ties rotate)

    @staticmethod
    def supported() -> bool:
        """Whether this platform passes descriptors between processes (not Windows)."""
        return hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM; the exit status."""
        listener = self.config.bind_socket()
        listener.listen(self.config.backlog)
        listener.setblocking(False)
        handlers = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        status = 0
        try:
            for slot in range(self.count):
                self._start(slot)
            with selectors.DefaultSelector() as selector:
                selector.register(listener, selectors.EVENT_READ)
                while True:
                    if selector.select(_CHECK_SECONDS):
                        self._accept(listener)
                    if not self._replace_dead():
                        status = STARTUP_FAILURE
                        break
        except _Stop:
            pass
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            listener.close()
            self._stop_all()
        return status

    def _start(self, slot: int) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._closed[slot] = 0
        process = _spawn.Process(
            target=_worker_main, args=(self.config, child_end, self._closed, slot)
        )
        process.start()
        child_end.close()
        parent_end.setblocking(False)
        self._workers[slot] = _Worker(process, parent_end)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. EMFILE: keep serving what is open
                logger.warning("accept failed: %s", error)
                return
            with connection:
                self._hand(connection)

    def _hand(self, connection: socket.socket) -> None:
        """To the live worker with the fewest open connections; the caller closes our copy."""
        order = [(self._next + i) % self.count for i in range(self.count)]
        order.sort(key=self._open_connections)
        for slot in order:
            worker = self._workers[slot]
            if worker is None:
                continue
            try:
                socket.send_fds(worker.channel, [b"c"], [connection.fileno()])
            except OSError:  # its channel is full or gone: the next one
                continue
            worker.handed += 1
            self._next = (slot + 1) % self.count
            return
        logger.warning("no worker could take a connection; it is closed")

    def _open_connections(self, slot: int) -> int:
        worker = self._workers[slot]
        return sys.maxsize if worker is None else worker.handed - self._closed[slot]

    def _replace_dead(self) -> bool:
        """Start a new worker in place of each that exited; False when one could not start."""
        for slot, worker in enumerate(self._workers):
            if worker is None or worker.process.is_alive():
                continue
            code = worker.process.exitcode
            worker.channel.close()
            if code == STARTUP_FAILURE:
                logger.error("worker %d could not start", slot)
                self._workers[slot] = None
                return False
            logger.warning("worker %d exited (%s); starting another", slot, code)
            self._start(slot)
        return True

    def _stop_all(self) -> None:
        live = [w for w in self._workers if w is not None]
        for worker in live:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        grace = (self.config.timeout_graceful_shutdown or 0) + 5
        for worker in live:
            worker.process.join(grace)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.channel.close()


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop
