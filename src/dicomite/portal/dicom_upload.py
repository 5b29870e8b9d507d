"""Uploading DICOM files from the studies page (the dropzone in ``static/portal.js``).

``POST /portal/dicom/upload`` takes one Part 10 instance per request as ``application/dicom``
(CSRF token in ``X-CSRF-Token``) and stores it through the DICOMweb API's own STOW-RS
transaction (``StowService.handle``, v2 rules), so validation, failure reasons and duplicates
behave exactly as for API clients. The answer is a small JSON object the page shows:
``{"stored": bool, "message": str, "reason": int | null}`` with STOW's status (200 stored,
202 stored with a warning, 409 refused; 400/413/415 for a request that cannot be stored).
"""

from __future__ import annotations

import anyio.from_thread
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from dicomite.dicom.errors import DicomError
from dicomite.dicom.multipart import MediaType
from dicomite.dicom.stow.results import Outcome, Reason
from dicomite.dicom.stow.service import DICOM, DICOM_JSON, StowRequest
from dicomite.identity import policy
from dicomite.portal.dicom_access import partition, service
from dicomite.portal.web import Page

# v2 stores an instance whose searchable attributes are invalid, with a warning (conformance
# statement, "Store Changes From V1"): what a person dropping files wants.
STOW_VERSION = 2
OUTCOMES = {
    Reason.PROCESSING_FAILURE: "The file is not a DICOM instance that could be read.",
    Reason.VALIDATION_FAILURE: "The instance failed validation.",
    Reason.MISMATCHED_STUDY: "The instance belongs to another study.",
    Reason.DUPLICATE: "This instance is already stored.",
    Reason.PENDING: "This instance is being stored by another upload. Try again in a moment.",
    Reason.VALIDATION_WARNING: "Stored, with attributes that are not valid and not searchable.",
    Reason.SOP_CLASS_MISMATCH_WARNING: (
        "Stored; its SOP Class UID differs from the file's meta information."
    ),
}


def upload(page: Page) -> Response:
    if not policy.can_write_dicom(page.user):
        return _answer(403, False, policy.WRITE_DICOM)
    if MediaType.parse(page.request.headers.get("content-type", "")).value != DICOM:
        return _answer(415, False, f"Send one DICOM file per request, as {DICOM}.")
    dicom = service(page)
    base_url = f"{dicom.public_url}/dicom/v{STOW_VERSION}"
    request = StowRequest(STOW_VERSION, None, False, base_url, partition(page))
    headers = {
        "content-type": DICOM,
        "accept": DICOM_JSON,
        "content-length": page.request.headers.get("content-length", ""),
    }
    try:
        # Handlers run in the blocking pool; STOW streams the body on the event loop.
        outcome = anyio.from_thread.run(
            dicom.stow.handle, request, headers, page.request.stream(), token=page.loop
        )
    except DicomError as error:
        return _answer(error.status, False, error.message)
    except ClientDisconnect:
        return Response(status_code=400)
    return _outcome(outcome)


def _outcome(outcome: Outcome) -> Response:
    """The result of the one instance (one ``application/dicom`` body is one part)."""
    (result,) = outcome.results
    failed = result.failure is not None
    reason = result.failure if failed else result.warning
    fallback = f"Refused (reason {reason})." if failed else "Stored."
    message = fallback if reason is None else OUTCOMES.get(reason, fallback)
    if result.comments:
        message += " " + "; ".join(result.comments)
    return _answer(outcome.status, not failed, message, reason)


def _answer(status: int, stored: bool, message: str, reason: int | None = None) -> Response:
    return JSONResponse({"stored": stored, "message": message, "reason": reason}, status)
