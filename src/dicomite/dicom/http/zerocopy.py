"""Stored files as a WADO-RS body, without copying them through Python where the server can.

One instance retrieved whole and as stored is that file: Starlette's ``FileResponse``, which
the server sends itself when it offers the ASGI ``http.response.pathsend`` extension (granian
does). Several instances, or part heads between them, are streamed by the caller.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from starlette.responses import FileResponse

from dicomite.dicom.errors import StoredFileMissing
from dicomite.dicom.retrieve.wado import Piece


def file_response(pieces: Sequence[Piece], media_type: str) -> FileResponse | None:
    """``pieces`` as a file response when they are one file, else None. The file is looked at
    now, so that one gone since the index was read is a 404 before the response starts."""
    if len(pieces) != 1 or not isinstance(pieces[0], str):
        return None
    try:
        found = os.stat(pieces[0])
    except FileNotFoundError:
        raise StoredFileMissing() from None
    return FileResponse(pieces[0], media_type=media_type, stat_result=found)
