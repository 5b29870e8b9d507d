"""STOW-RS outcomes: per-instance results, reason codes, and the response dataset."""

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


def response_dataset(
    study_uid: str | None, base_url: str, results: list[Result]
) -> tuple[int, dict[str, Any]]:
    """Status and the Store Instances Response Module (PS3.18 §10.5.3, conformance statement)."""
    if not results:
        return 204, {}
    stored = [r for r in results if r.failure is None]
    failed = [r for r in results if r.failure is not None]
    body: dict[str, Any] = {}
    if study_uid is not None and stored:
        body["00081190"] = {
            "vr": "UR",
            "Value": [f"{base_url}/studies/{study_uid}"],
        }
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": [_failed_item(r) for r in failed]}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": [_stored_item(r) for r in stored]}
    if not stored:
        return 409, body
    warned = any(r.warning is not None for r in stored)
    return (202 if failed or warned else 200), body


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
