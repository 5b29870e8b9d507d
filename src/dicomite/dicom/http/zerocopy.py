"""Stored files as a WADO-RS body, without copying them through Python where the server can.

One instance retrieved whole and as stored is that file: Starlette's ``FileResponse``, which
the server sends itself when it offers the ASGI ``http.response.pathsend`` extension (granian
does). Several instances, or part heads between them, are streamed by ``fallback``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from starlette.responses import FileResponse, Response, StreamingResponse

from dicomite.dicom.retrieve.wado import Piece


def files_response(
    pieces: Sequence[Piece], media_type: str, fallback: Callable[[], AsyncIterator[bytes]]
) -> Response:
    """``pieces`` as one response body: a file response when they are one file."""
    if len(pieces) == 1 and isinstance(pieces[0], str):
        return FileResponse(pieces[0], media_type=media_type)
    return StreamingResponse(fallback(), media_type=media_type)
