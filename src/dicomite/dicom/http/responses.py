"""The DICOM domain's answers as Starlette responses: the one place where its errors
(``DicomError.wire``) and results (DICOM JSON, STOW outcomes) meet the web framework."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from dicomite.dicom.errors import DicomError
from dicomite.dicom.model import dicomjson
from dicomite.dicom.stow.results import Outcome, response_dataset
from dicomite.dicom.stow.service import DICOM_JSON

JSON = "application/json; charset=utf-8"


def error_response(error: DicomError) -> Response:
    wire = error.wire()
    return Response(wire.body, status_code=wire.status, headers=wire.headers)


def dicom_json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    content = dicomjson.encode(body)
    return Response(content, status_code=status, media_type=DICOM_JSON, headers=headers)


def plain_json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``application/json``, as the management APIs (extended query tags, operations) answer."""
    content = dicomjson.encode(body)
    return Response(content, status_code=status, media_type=JSON, headers=headers)


def stow_response(outcome: Outcome, base_url: str) -> Response:
    """The Store Instances Response Module with STOW's status; no content for no instance."""
    status = outcome.status
    if status == 204:
        return Response(status_code=204)
    return dicom_json(response_dataset(outcome, base_url), status)


async def routing_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route, method not allowed) as text, like ``DicomError``s."""
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
