"""Stored files as a WADO-RS body, without copying them through Python where the server can.

One instance retrieved whole and as stored is that file: Starlette's ``FileResponse``, which
the server sends itself when it offers the ASGI ``http.response.pathsend`` extension (granian
does). Anything else is streamed by the caller.
"""

from __future__ import annotations

import os

from starlette.responses import FileResponse

from dicomite.blocking import run_blocking
from dicomite.dicom.errors import StoredFileMissing


async def file_response(path: str, media_type: str) -> FileResponse:
    """The file at ``path`` as the response. It is looked at now, in the blocking pool (file
    I/O, README "Threading"; Starlette would stat it on its own thread otherwise), so that a
    file gone since the index was read is a 404 before the response starts."""
    try:
        found = await run_blocking(os.stat, path)
    except FileNotFoundError:
        raise StoredFileMissing() from None
    return FileResponse(path, media_type=media_type, stat_result=found)
