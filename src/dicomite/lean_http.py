"""uvicorn's httptools protocol, reading into a reused buffer and handing request bodies to the
app without copying them.

uvicorn appends each body chunk it parses to a ``bytearray`` and gives the app
``bytes(bytearray)``: two copies of every byte of a request body, on top of the event loop's
read and the parser's. For STOW-RS, where bodies are hundreds of megabytes of pixel data, those
copies were a sixth of the server's CPU. Here the chunks are kept as they come from the parser:
the app gets that very ``bytes`` object when one chunk arrived since it last asked (the usual
case), or the chunks joined when several did.

It relies on how uvicorn's ``RequestResponseCycle`` uses ``body``: ``+=`` and ``len`` in
``on_body``, ``bytes(...)`` in ``receive``, and a fresh ``bytearray`` after each ``receive``.
``tests/test_lean_http.py`` checks that against the installed uvicorn.

Reads go the same way (:class:`LeanHttp`): as a ``BufferedProtocol`` it has the event loop
receive straight into one buffer per thread, which the parser has read before the next receive,
instead of into a buffer of the loop's own that is then copied into a new ``bytes`` per read.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Self

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState


class BodyChunks:
    """Stands in for the cycle's ``bytearray``: appending keeps a reference, not a copy."""

    __slots__ = ("_chunks", "_size")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0

    def __iadd__(self, chunk: bytes) -> Self:
        self._chunks.append(chunk)
        self._size += len(chunk)
        return self

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        if len(self._chunks) == 1 and type(self._chunks[0]) is bytes:
            return self._chunks[0]
        return b"".join(self._chunks)


class LeanBodyProtocol(HttpToolsProtocol):
    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        body_so_far: object = cycle.body
        if not isinstance(body_so_far, BodyChunks):
            chunks = BodyChunks()
            held = bytes(cycle.body)  # empty unless uvicorn changes how it resets the body
            if held:
                chunks += held
            cycle.body = chunks  # type: ignore[assignment]
        super().on_body(body)


# What uvloop reads at most at once (STOW: 1.06x over 256 KiB). A whole read's body chunk, with
# its bytes object's header, stays below the size the heap serves (``heap``), so that it is not
# mapped and faulted in afresh.
READ_BUFFER_BYTES = 1024 * 1024 - 4096
_per_thread = threading.local()


def _read_buffer() -> memoryview:
    """The thread's receive buffer: one event loop runs per thread, and it lends the buffer to
    one connection at a time, from ``get_buffer`` to ``buffer_updated``."""
    buffer: memoryview | None = getattr(_per_thread, "buffer", None)
    if buffer is None:
        buffer = _per_thread.buffer = memoryview(bytearray(READ_BUFFER_BYTES))
    return buffer


class LeanHttp(asyncio.BufferedProtocol):
    """What ``dicomite serve`` runs: a :class:`LeanBodyProtocol` fed by buffered reads.

    A separate object because uvloop reads into a protocol's buffer only when the protocol is
    not also an ``asyncio.Protocol``, which uvicorn's is. uvicorn builds it as it builds its
    own protocols, from the config and server state."""

    protocol_class: type[LeanBodyProtocol] = LeanBodyProtocol

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.http = self.protocol_class(config, server_state, app_state, _loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.http.connection_made(transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.http.connection_lost(exc)

    def eof_received(self) -> None:
        self.http.eof_received()

    def pause_writing(self) -> None:
        self.http.pause_writing()

    def resume_writing(self) -> None:
        self.http.resume_writing()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        # The parser copies out what it keeps (headers, body chunks) before this returns.
        self.http.data_received(_read_buffer()[:nbytes])  # type: ignore[arg-type]
