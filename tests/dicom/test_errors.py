"""Every ``DicomError`` knows its wire form: status, text/plain body, headers."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import dicomite.dicom
from dicomite.dicom.errors import (
    ActiveOperation,
    BadRequest,
    Conflict,
    DicomError,
    Forbidden,
    InsufficientStorage,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    StoredFileMissing,
    Unauthenticated,
    UnsupportedMediaType,
)
from dicomite.dicom.index.partitions import PartitionRefused
from dicomite.dicom.operations.export_destinations import OutsideExportFolder

STATUS: dict[type[DicomError], int] = {
    BadRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    StoredFileMissing: 404,
    NotAcceptable: 406,
    Conflict: 409,
    ActiveOperation: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    InsufficientStorage: 507,
    OutsideExportFolder: 400,
    PartitionRefused: 400,
}
TEXT = "text/plain; charset=utf-8"
MESSAGE = "The study 1.2.3 was not found (Müller)."
CHALLENGE = 'Bearer authorization_uri="https://login.example/tenant", error="invalid_token"'
LOCATION = "https://dicomite.example/dicom/v2/operations/a99a8b5178d44fd9b004b6c0bcaccf1d"


def _every(kind: type[DicomError]) -> set[type[DicomError]]:
    below = set(kind.__subclasses__())
    return below.union(*(_every(sub) for sub in below))


def _import_the_dicom_package() -> None:
    """Every module, so that every error type defined anywhere in it is a subclass seen."""
    prefix = f"{dicomite.dicom.__name__}."
    for module in pkgutil.walk_packages(dicomite.dicom.__path__, prefix):
        importlib.import_module(module.name)


def _error(kind: type[DicomError]) -> DicomError:
    if kind is Unauthenticated:
        return Unauthenticated(MESSAGE, CHALLENGE)
    return ActiveOperation(MESSAGE, LOCATION) if kind is ActiveOperation else kind(MESSAGE)


def test_every_error_type_is_listed() -> None:
    _import_the_dicom_package()
    assert _every(DicomError) == set(STATUS)


@pytest.mark.parametrize("kind", list(STATUS), ids=lambda kind: kind.__name__)
def test_wire_form(kind: type[DicomError]) -> None:
    wire = _error(kind).wire()
    assert wire.status == STATUS[kind]
    assert wire.body == MESSAGE.encode()
    expected = {"Content-Type": TEXT}
    if kind is Unauthenticated:  # RFC 6750 §3: a 401 names its scheme
        expected["WWW-Authenticate"] = CHALLENGE
    if kind is ActiveOperation:  # where the running operation is watched
        expected["Location"] = LOCATION
    assert wire.headers == expected
