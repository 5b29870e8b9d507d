"""Stored files sent straight from the page cache: ``os.sendfile`` on the connection's socket.

A WADO-RS retrieval of stored instances from the folder store is the files themselves, between
part heads; copying them through Python (read, join, frame as HTTP chunks, write) costs more
CPU than the kernel needs to move them. ASGI has no zero-copy extension that uvicorn implements,
so :class:`FilesResponse` reaches uvicorn's own connection when it can — its httptools protocol
on a plain TCP socket, found through the ASGI ``receive`` callable (bound to uvicorn's
``RequestResponseCycle``) — and otherwise streams the same bytes the portable way:

- the status line and headers go through ASGI ``send`` (uvicorn frames the body as chunked);
- once uvicorn's write buffer is empty, a worker thread writes each piece as one HTTP chunk on
  a duplicate of the socket's descriptor (taken in the event loop, so that it is this
  connection's): the bytes pieces with ``write``, the files with ``sendfile``, waiting for the
  socket to be writable with ``poll``;
- an empty last body goes through ``send`` with ``more_body: False``, so uvicorn ends the body
  (``0\\r\\n\\r\\n``) and its connection state stays right.

Memory stays flat whatever the size of the files. A peer that goes away ends the connection.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

Piece = bytes | str  # bytes to send, or the path of a file to send whole
STALL_SECONDS = 60.0  # a peer that takes nothing for this long is dropped
_SENDERS: anyio.CapacityLimiter | None = None
_CHUNK_HEAD = b"%x\r\n"
_HTTPTOOLS = "uvicorn.protocols.http.httptools_impl"  # the module of the protocol reached
_KERNEL = hasattr(os, "sendfile") and hasattr(select, "poll")


@dataclass(frozen=True)
class _Connection:
    cycle: Any  # uvicorn's RequestResponseCycle
    transport: Any  # asyncio.Transport

    def duplicate(self) -> int:
        """A descriptor of the socket of our own. Taken in the event loop while the connection
        is open, as the loop closes the socket when the peer leaves, and its number may then
        be another connection's."""
        sock = self.transport.get_extra_info("socket")
        if self.transport.is_closing() or sock is None or sock.fileno() < 0:
            raise OSError("the connection is closing")
        return os.dup(sock.fileno())


def _connection(scope: Scope, receive: Receive) -> _Connection | None:
    """uvicorn's plain-TCP httptools connection behind ``receive``, or None."""
    cycle = getattr(receive, "__self__", None)
    if scope.get("method") != "GET" or type(cycle).__module__ != _HTTPTOOLS or not _KERNEL:
        return None
    transport = getattr(cycle, "transport", None)
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return None
    return _Connection(cycle, transport) if transport.get_extra_info("socket") else None


class FilesResponse(Response):
    """``pieces`` as one response body: ``sendfile`` under uvicorn (module docstring), else
    the stream ``fallback`` makes of the same pieces."""

    def __init__(
        self, pieces: Sequence[Piece], media_type: str,
        fallback: Callable[[], AsyncIterator[bytes]],
    ) -> None:  # fmt: skip
        super().__init__(media_type=media_type)
        # No Content-Length: uvicorn sends the body chunked.
        self.raw_headers = [h for h in self.raw_headers if h[0] != b"content-length"]
        self._pieces = list(pieces)
        self._fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = _connection(scope, receive)
        if connection is None:
            stream = StreamingResponse(self._fallback(), media_type=self.media_type)
            await stream(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        try:
            if not getattr(connection.cycle, "chunked_encoding", False):
                raise OSError("uvicorn does not send this body chunked")
            await _drained(connection.transport)
            fd = connection.duplicate()
            try:
                await anyio.to_thread.run_sync(_send_pieces, fd, self._pieces, limiter=_senders())
            finally:
                os.close(fd)
        except OSError:  # the peer went away or stalled: so does the connection
            connection.transport.abort()
            await anyio.sleep(0)  # uvicorn sees the connection lost, not an unfinished reply
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _senders() -> anyio.CapacityLimiter:
    """Threads sending responses, per process (apart from anyio's default limiter, so that
    slow readers never hold up the threads everything else runs in)."""
    global _SENDERS
    if _SENDERS is None:
        _SENDERS = anyio.CapacityLimiter(32)
    return _SENDERS


async def _drained(transport: Any) -> None:
    """Wait until uvicorn's buffer for this connection is empty (the headers went out)."""
    deadline = time.monotonic() + STALL_SECONDS
    while transport.get_write_buffer_size():
        if transport.is_closing() or time.monotonic() > deadline:
            raise OSError("the response head was not taken")
        await anyio.sleep(0.001)
    if transport.is_closing():
        raise OSError("the connection is closing")


def _send_pieces(fd: int, pieces: Sequence[Piece]) -> None:
    """Each piece as one HTTP chunk (RFC 9112 §7.1), files with ``sendfile``; in a thread."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    for piece in pieces:
        if isinstance(piece, bytes):
            _write(fd, poller, _CHUNK_HEAD % len(piece) + piece + b"\r\n")
        else:
            _send_file(fd, poller, piece)


def _send_file(fd: int, poller: select.poll, path: str) -> None:
    source = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(source).st_size
        _write(fd, poller, _CHUNK_HEAD % size)
        offset = 0
        while offset < size:
            try:
                sent = os.sendfile(fd, source, offset, size - offset)
            except BlockingIOError:
                _wait(poller)
                continue
            if sent == 0:
                raise OSError(f"{path} shrank while being sent")
            offset += sent
        _write(fd, poller, b"\r\n")
    finally:
        os.close(source)


def _write(fd: int, poller: select.poll, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            _wait(poller)


def _wait(poller: select.poll) -> None:
    if not poller.poll(STALL_SECONDS * 1000):
        raise TimeoutError("the peer took nothing for a minute")
