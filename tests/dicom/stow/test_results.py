"""STOW outcomes: the status of a request from its parts' results, and the response dataset."""

from __future__ import annotations

import pytest

from dicomite.dicom.stow.results import Outcome, Reason, Result, response_dataset

BASE = "https://dicom.example/dicom/v2"
URL = f"{BASE}/studies/1.2/series/1.3/instances/1.4"


def _stored(warning: int | None = None) -> Result:
    return Result("1.2.840.10008.5.1.4.1.1.2", "1.4", URL, warning=warning)


def _failed() -> Result:
    return Result(failure=Reason.PROCESSING_FAILURE, comments=["unreadable"])


@pytest.mark.parametrize(
    ("results", "status"),
    [
        ([], 204),
        ([_failed()], 409),
        ([_failed(), _failed()], 409),
        ([_stored()], 200),
        ([_stored(), _failed()], 202),
        ([_stored(Reason.VALIDATION_WARNING)], 202),
    ],
)
def test_status(results: list[Result], status: int) -> None:
    assert Outcome(None, results).status == status


def test_response_dataset() -> None:
    outcome = Outcome("1.2", [_stored(Reason.VALIDATION_WARNING), _failed()])
    body = response_dataset(outcome, BASE)
    assert body["00081190"] == {"vr": "UR", "Value": [f"{BASE}/studies/1.2"]}
    [stored] = body["00081199"]["Value"]
    assert stored["00081190"]["Value"] == [URL]
    assert stored["00081196"]["Value"] == [Reason.VALIDATION_WARNING]
    [failed] = body["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [Reason.PROCESSING_FAILURE]
    assert failed["00741048"]["Value"] == [{"00000902": {"vr": "LO", "Value": ["unreadable"]}}]
    assert "00081190" not in response_dataset(Outcome(None, outcome.results), BASE)
