"""QIDO-RS results (DICOM JSON, PS3.18 §F.2) as a table a person reads: one row per match."""

from __future__ import annotations

from typing import Any

from pydicom.datadict import tag_for_keyword
from rich.console import JustifyMethod
from rich.table import Column, Table

# The columns of each level: (header, keyword); UIDs last, as they are long. --output json has
# every attribute the server returned.
COLUMNS = {
    "studies": [
        ("Patient name", "PatientName"),
        ("Patient ID", "PatientID"),
        ("Date", "StudyDate"),
        ("Modalities", "ModalitiesInStudy"),
        ("Description", "StudyDescription"),
        ("Instances", "NumberOfStudyRelatedInstances"),
        ("Study Instance UID", "StudyInstanceUID"),
    ],
    "series": [
        ("Modality", "Modality"),
        ("Number", "SeriesNumber"),
        ("Description", "SeriesDescription"),
        ("Instances", "NumberOfSeriesRelatedInstances"),
        ("Study Instance UID", "StudyInstanceUID"),
        ("Series Instance UID", "SeriesInstanceUID"),
    ],
    "instances": [
        ("Number", "InstanceNumber"),
        ("Study Instance UID", "StudyInstanceUID"),
        ("Series Instance UID", "SeriesInstanceUID"),
        ("SOP Instance UID", "SOPInstanceUID"),
        ("SOP Class UID", "SOPClassUID"),
    ],
}


def _tag_key(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    return f"{tag:08X}" if tag is not None else keyword


def person(value: Any) -> str:
    """PS3.5 §6.2 PN components (family^given^middle^prefix^suffix) as "Family, Given Middle"."""
    name = value.get("Alphabetic", "") if isinstance(value, dict) else ""
    family, _, rest = str(name).partition("^")
    given = " ".join(part for part in rest.split("^") if part)
    return f"{family}, {given}" if family and given else family or given


def _shown(vr: str, value: Any) -> str:
    if vr == "PN":
        return person(value)
    if vr == "DA" and isinstance(value, str) and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    if isinstance(value, float):
        return f"{value:g}"
    return "" if isinstance(value, dict) else str(value)


def cell(dataset: dict[str, Any], keyword: str) -> str:
    """An attribute's values as text, several separated by ", "."""
    element = dataset.get(_tag_key(keyword))
    if not isinstance(element, dict):
        return ""
    values = element.get("Value") or []
    shown = [_shown(str(element.get("vr", "")), value) for value in values]
    return ", ".join(value for value in shown if value)


def _column(header: str, keyword: str) -> Column:
    """On a narrow terminal UIDs get most of the width (folded, never cut short)."""
    if keyword.endswith("UID"):
        return Column(header, overflow="fold", ratio=4)
    if keyword.endswith("Date"):
        return Column(header, no_wrap=True, min_width=10)
    justify: JustifyMethod = "right" if keyword.startswith("NumberOf") else "left"
    return Column(header, justify=justify, ratio=1)


def results_table(level: str, results: list[dict[str, Any]]) -> Table:
    columns = COLUMNS[level]
    table = Table(*(_column(header, keyword) for header, keyword in columns))
    for dataset in results:
        table.add_row(*(cell(dataset, keyword) for _, keyword in columns))
    return table
