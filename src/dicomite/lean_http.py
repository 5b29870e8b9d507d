"""uvicorn's httptools protocol, handing request bodies to the app without copying them.

uvicorn appends each body chunk it parses to a ``bytearray`` and gives the app
``bytes(bytearray)``: two copies of every byte of a request body, on top of the event loop's
read and the parser's. For STOW-RS, where bodies are hundreds of megabytes of pixel data, those
copies were a sixth of the server's CPU. Here the chunks are kept as they come from the parser:
the app gets that very ``bytes`` object when one chunk arrived since it last asked (the usual
case), or the chunks joined when several did.

It relies on how uvicorn's ``RequestResponseCycle`` uses ``body``: ``+=`` and ``len`` in
``on_body``, ``bytes(...)`` in ``receive``, and a fresh ``bytearray`` after each ``receive``.
``tests/test_lean_http.py`` checks that against the installed uvicorn.
"""

from __future__ import annotations

from typing import Self

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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
