"""The body of ``POST /v{n}/studies/$bulkUpdate`` (Azure DICOM service, "Update DICOM files"):
``{"studyInstanceUids": [...], "changeDataset": {DICOM JSON}}``, both required, checked here,
before any operation starts; every refusal is a 400.

Only the attributes the document lists may change: the non-sequence attributes of the Patient
Identification, Patient Demographic and General Study modules it names (``UPDATABLE``), each
with its dictionary VR, and none of them to null (no ``Value``). UIDs do not change here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.valuerep import validate_value

from dicomite.dicom.errors import BadRequest
from dicomite.dicom.model.uids import valid_uid

MAX_STUDIES = 50
# "Update DICOM files", supported attributes: Patient Identification Module, Patient
# Demographic Module, General Study Module (PS3.3 Tables C.2-2, C.2-3, C.7-3).
UPDATABLE_KEYWORDS = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "TypeOfPatientID",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "MedicalRecordLocator",
    "IssuerOfPatientID",
    "PatientAge",
    "Occupation",
    "ConfidentialityConstraintOnPatientDataDescription",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientSex",
    "QualityControlSubject",
    "PatientSize",
    "PatientWeight",
    "PatientAddress",
    "MilitaryRank",
    "BranchOfService",
    "CountryOfResidence",
    "RegionOfResidence",
    "PatientTelephoneNumbers",
    "EthnicGroup",
    "PatientReligiousPreference",
    "PatientComments",
    "ResponsiblePerson",
    "ResponsiblePersonRole",
    "ResponsibleOrganization",
    "PatientSpeciesDescription",
    "PatientBreedDescription",
    "BreedRegistrationNumber",
    "ReferringPhysicianName",
    "AccessionNumber",
    "StudyDescription",
)
UPDATABLE = {f"{tag_for_keyword(k):08X}": dictionary_VR(k) for k in UPDATABLE_KEYWORDS}
_UID_TAGS = {"0020000D", "0020000E", "00080018"}
_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")  # PS3.18 §F.2.2


@dataclass(frozen=True)
class UpdateRequest:
    study_uids: list[str]
    change_dataset: dict[str, dict[str, Any]]  # DICOM JSON, tags upper case, values checked

    def values(self) -> dict[str, tuple[str, list[str]]]:
        """Tag → (VR, values as DICOM text: a person name's groups joined by ``=``)."""
        return {
            tag: (element["vr"], [_text(element["vr"], v) for v in element["Value"]])
            for tag, element in self.change_dataset.items()
        }


def parse(body: Any) -> UpdateRequest:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    uids, change = body.get("studyInstanceUids"), body.get("changeDataset")
    if uids is None or change is None:
        raise BadRequest("The request body must specify studyInstanceUids and changeDataset.")
    return UpdateRequest(_study_uids(uids), _change_dataset(change))


def _study_uids(uids: Any) -> list[str]:
    if not isinstance(uids, list) or not uids:
        raise BadRequest("studyInstanceUids must be a non-empty list of study instance UIDs.")
    if len(uids) > MAX_STUDIES:
        raise BadRequest(f"A maximum of {MAX_STUDIES} studies can be updated in one operation.")
    for uid in uids:
        if not isinstance(uid, str) or not valid_uid(uid):
            raise BadRequest(f"The study instance UID '{str(uid)[:80]}' is invalid.")
    return list(dict.fromkeys(uids))


def _change_dataset(change: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(change, dict) or not change:
        raise BadRequest("changeDataset must be a non-empty DICOM JSON dataset.")
    checked: dict[str, dict[str, Any]] = {}
    for tag, element in change.items():
        normal = str(tag).upper()
        checked[normal] = _element(normal, element)
    return checked


def _element(tag: str, element: Any) -> dict[str, Any]:
    if not _TAG.match(tag):
        raise BadRequest(f"'{tag[:16]}' is not a DICOM tag (8 hexadecimal digits).")
    if tag in _UID_TAGS:
        raise BadRequest(f"Updating the UID attribute {_name(tag)} is not supported.")
    vr = UPDATABLE.get(tag)
    if vr is None:
        raise BadRequest(f"The attribute {_name(tag)} cannot be updated.")
    if not isinstance(element, dict) or element.get("vr") != vr:
        raise BadRequest(f"The attribute {_name(tag)} must be given with VR {vr}.")
    values = element.get("Value")
    if not isinstance(values, list) or not values or any(v in (None, "") for v in values):
        raise BadRequest(f"The attribute {_name(tag)} cannot be updated to a null value.")
    for value in values:
        _check_value(tag, vr, value)
    return {"vr": vr, "Value": values}


def _check_value(tag: str, vr: str, value: Any) -> None:
    try:
        text = _text(vr, value)
        validate_value(vr, text, config.RAISE)
    except (TypeError, ValueError) as error:
        raise BadRequest(f"The value of {_name(tag)} is invalid: {str(error)[:200]}") from None
    if not text.strip(" ="):
        raise BadRequest(f"The attribute {_name(tag)} cannot be updated to a null value.")


def _text(vr: str, value: Any) -> str:
    if vr == "PN":
        return _person_name(value)
    if vr in ("DS", "IS") and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"a {vr} value is a string")
    return value


def _person_name(value: Any) -> str:
    """PS3.18 §F.2.2: an object of up to three component groups."""
    if not isinstance(value, Mapping) or not set(value) <= set(_PN_GROUPS):
        raise TypeError('a PN value is an object with "Alphabetic", "Ideographic", "Phonetic"')
    groups = [value.get(group) or "" for group in _PN_GROUPS]
    if not all(isinstance(group, str) for group in groups):
        raise TypeError("a PN component group is a string")
    return "=".join(groups).rstrip("=")


def _name(tag: str) -> str:
    keyword = keyword_for_tag(int(tag, 16))
    return f"{keyword} ({tag})" if keyword else f"({tag})"
