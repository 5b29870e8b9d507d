"""What the DICOM pages share: the DICOM service of this process, the read check and the UIDs of
the path, QIDO searches without HTTP, and DICOM JSON values as the pages show them.

The pages call the DICOM domain (``dicom.index``, ``dicom.retrieve``, …)
directly; its ``DicomError``s become portal error pages with their status and message.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

from starlette.responses import Response

from dicomite.dicom.errors import DicomError, NotFound
from dicomite.dicom.index import qido
from dicomite.dicom.index.partitions import Partition
from dicomite.dicom.model.dicomjson import JsonDataset, keyword_tag, person_name, tag_key
from dicomite.dicom.model.uids import valid_uid
from dicomite.dicom.service import DicomService
from dicomite.identity import policy
from dicomite.portal.web import Handler, Page

PATH_UIDS = ("study", "series", "instance")


def service(page: Page) -> DicomService:
    return page.portal.services.dicom


def partition(page: Page) -> Partition:
    """The pages show ``Microsoft.Default`` on a deployment with data partitions."""
    return service(page).partitions.default


def dicom_page(handler: Handler) -> Handler:
    """A page or image for DICOM Data Readers and Owners: a path with a malformed UID is a 404
    and the DICOM domain's errors become error pages."""

    @functools.wraps(handler)
    def guarded(page: Page) -> Response:
        policy.require_read_dicom(page.user)
        try:
            check_path_uids(page)
            return handler(page)
        except DicomError as error:
            return page.portal.error_page(page.request, error.status, error.message, page)

    return guarded


def check_path_uids(page: Page) -> None:
    for name in PATH_UIDS:
        value = page.params.get(name)
        if value is not None and not valid_uid(value):
            raise NotFound(f"There is no {name} '{value[:64]}'.")


def search(page: Page, scope: qido.Scope, params: list[tuple[str, str]]) -> list[JsonDataset]:
    """QIDO-RS as the DICOMweb API answers it (same parsing, matching and paging)."""
    scope = replace(scope, partition=partition(page))
    query = qido.parse(params, scope)
    with page.read_connection() as connection:
        return qido.search(connection, scope, query)


def text(dataset: JsonDataset, keyword: str) -> str:
    """An attribute's values as text, separated by backslashes as DICOM does."""
    return "\\".join(values(dataset, keyword))


def values(dataset: JsonDataset, keyword: str) -> list[str]:
    """An attribute's values: names as "Family, Given", dates as YYYY-MM-DD."""
    element = dataset.get(tag_key(keyword_tag(keyword)), {})
    shown = [_shown(element.get("vr"), value) for value in element.get("Value") or []]
    return [value for value in shown if value]


def number(dataset: JsonDataset, keyword: str) -> int | None:
    values = dataset.get(tag_key(keyword_tag(keyword)), {}).get("Value") or [None]
    try:
        return int(values[0])
    except (TypeError, ValueError):
        return None


def _shown(vr: str | None, value: Any) -> str:
    if vr == "PN":
        return person(person_name(value) or "")
    if vr == "DA" and isinstance(value, str) and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    if isinstance(value, float):
        return f"{value:g}"
    return "" if isinstance(value, dict) else str(value)


def person(name: str) -> str:
    """PS3.5 §6.2 PN components (family^given^middle^prefix^suffix) as "Family, Given Middle"."""
    family, _, rest = name.partition("^")
    given = " ".join(part for part in rest.split("^") if part)
    return f"{family}, {given}" if family and given else family or given
