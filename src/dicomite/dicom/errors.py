"""Errors of the DICOM service, each knowing its wire format (``wire()``: status, headers, body)
without a web framework; ``dicom.http.responses`` turns that into a Starlette response.

Exception tree::

    DicomError                    status, message: a text/plain body, as the Azure DICOM
    │                             service's exception middleware answers (a content result)
    ├── BadRequest                400
    ├── Unauthenticated           401 (+ RFC 6750 ``WWW-Authenticate: Bearer …``)
    ├── Forbidden                 403
    ├── NotFound                  404
    │   └── StoredFileMissing     404: an indexed instance's stored file is gone
    ├── NotAcceptable             406
    ├── Conflict                  409
    │   └── ActiveOperation       409 + ``Location`` of the operation already running
    ├── PayloadTooLarge           413
    ├── UnsupportedMediaType      415
    └── InsufficientStorage       507 (RFC 4918 §11.5): the blob store or the index is full

Failures of single instances inside a STOW request are not exceptions: they are reported in the
response dataset (``FailedSOPSequence``, see :mod:`dicomite.dicom.stow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Wire:
    """An error as sent: status, headers (``Content-Type`` included) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


class DicomError(Exception):
    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        return {}

    def wire(self) -> Wire:
        return Wire(self.status, {"Content-Type": TEXT, **self.headers()}, self.message.encode())


class BadRequest(DicomError):
    pass


class Unauthenticated(DicomError):
    status = 401

    def __init__(self, message: str, challenge: str) -> None:
        super().__init__(message)
        self.challenge = challenge

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}


class Forbidden(DicomError):
    status = 403


class NotFound(DicomError):
    status = 404


class StoredFileMissing(NotFound):
    """An indexed instance whose stored file is gone: deleted since the index was read (a
    DELETE racing the retrieve) or lost by the storage. As for an instance that is not there."""

    def __init__(
        self, message: str = "The stored file of the requested instance is missing."
    ) -> None:
        super().__init__(message)


class NotAcceptable(DicomError):
    status = 406


class Conflict(DicomError):
    status = 409


class ActiveOperation(Conflict):
    """Another operation of the kind is running: Azure answers where to watch it."""

    def __init__(self, message: str, location: str) -> None:
        super().__init__(message)
        self.location = location

    def headers(self) -> dict[str, str]:
        return {"Location": self.location}


class PayloadTooLarge(DicomError):
    status = 413


class UnsupportedMediaType(DicomError):
    status = 415


class InsufficientStorage(DicomError):
    status = 507
