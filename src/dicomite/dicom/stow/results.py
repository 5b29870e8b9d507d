"""STOW-RS outcomes: per-instance results and reason codes (``Outcome``, what the domain
returns), and the response dataset the DICOMweb route sends (``response_dataset``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dicomite.dicom.model import dicomjson


class Reason:
    """Failure and warning reason codes (conformance statement, "Store … Reason Codes")."""

    PROCESSING_FAILURE = 272
    VALIDATION_FAILURE = 43264
    MISMATCHED_STUDY = 43265
    DUPLICATE = 45070
    PENDING = 45071
    SOP_CLASS_MISMATCH_WARNING = 45063
    VALIDATION_WARNING = 1


@dataclass
class Result:
    sop_class_uid: str | None = None
    sop_uid: str | None = None
    retrieve_url: str | None = None
    failure: int | None = None
    warning: int | None = None
    comments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What one STOW request did: a result per part, in body order."""

    study_uid: str | None  # the study of the request path, if any
    results: list[Result]

    @property
    def stored(self) -> list[Result]:
        return [r for r in self.results if r.failure is None]

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.failure is not None]

    @property
    def status(self) -> int:
        """204 for no instance, 409 when none is stored, 202 when some failed or warned
        (PS3.18 §10.5.3, conformance statement "Store")."""
        if not self.results:
            return 204
        stored = self.stored
        if not stored:
            return 409
        warned = any(r.warning is not None for r in stored)
        return 202 if self.failed or warned else 200


def response_dataset(outcome: Outcome, base_url: str) -> dict[str, Any]:
    """The Store Instances Response Module (PS3.18 §10.5.3, conformance statement)."""
    stored, failed = outcome.stored, outcome.failed
    body: dict[str, Any] = {}
    if outcome.study_uid is not None and stored:
        body["00081190"] = {
            "vr": "UR",
            "Value": [f"{base_url}/studies/{outcome.study_uid}"],
        }
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": [_failed_item(r) for r in failed]}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": [_stored_item(r) for r in stored]}
    return body


def _references(result: Result) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if result.sop_class_uid:
        item["00081150"] = dicomjson.uid_element(result.sop_class_uid)
    if result.sop_uid:
        item["00081155"] = dicomjson.uid_element(result.sop_uid)
    return item


def _comments(result: Result) -> dict[str, Any]:
    if not result.comments:
        return {}
    items = [{"00000902": {"vr": "LO", "Value": [c]}} for c in result.comments]
    return {"00741048": {"vr": "SQ", "Value": items}}


def _failed_item(result: Result) -> dict[str, Any]:
    item = _references(result)
    item["00081197"] = {"vr": "US", "Value": [result.failure]}
    return item | _comments(result)


def _stored_item(result: Result) -> dict[str, Any]:
    item = _references(result)
    item["00081190"] = {"vr": "UR", "Value": [result.retrieve_url]}
    if result.warning is not None:
        item["00081196"] = {"vr": "US", "Value": [result.warning]}
    return item | _comments(result)
