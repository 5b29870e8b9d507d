"""The Starlette adapter of the DICOM domain's answers (``dicom.http.responses``)."""

from __future__ import annotations

import json

from dicomite.dicom.errors import Unauthenticated
from dicomite.dicom.http.responses import error_response, stow_response
from dicomite.dicom.stow.results import Outcome, Reason, Result

BASE = "https://dicom.example/dicom/v2"


def test_an_error_is_sent_as_its_wire_form() -> None:
    response = error_response(Unauthenticated("No token (é).", 'Bearer realm="x"'))
    assert response.status_code == 401
    assert response.body == "No token (é).".encode()
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["www-authenticate"] == 'Bearer realm="x"'
    assert response.headers["content-length"] == str(len(response.body))


def test_stow_outcomes_as_dicom_json() -> None:
    empty = stow_response(Outcome(None, []), BASE)
    assert empty.status_code == 204 and empty.body == b""

    refused = Result("1.2.840.10008.5.1.4.1.1.2", "1.2.3", failure=Reason.DUPLICATE)
    response = stow_response(Outcome("1.2", [refused]), BASE)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/dicom+json"
    body = json.loads(response.body)
    [item] = body["00081198"]["Value"]
    assert item["00081197"] == {"vr": "US", "Value": [Reason.DUPLICATE]}
    assert item["00081155"]["Value"] == ["1.2.3"]
    assert "00081190" not in body  # no study URL when nothing was stored
