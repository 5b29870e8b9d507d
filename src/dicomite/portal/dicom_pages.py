"""DICOM studies: the studies list with search and paging, a study with its series and their
instance thumbnails, and deleting a study. DICOM Data Readers see; DICOM Data Owners also upload
(``dicom_upload``) and delete. Instance views and images are in ``dicom_images``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date

from starlette.responses import Response
from starlette.routing import Route

from dicomite.dicom.errors import BadRequest, NotFound
from dicomite.dicom.index import delete, qido
from dicomite.dicom.index.schema import Level, name_words
from dicomite.dicom.model.dicomjson import JsonDataset
from dicomite.identity import policy
from dicomite.portal import dicom_images, dicom_upload
from dicomite.portal.dicom_access import (
    dicom_page,
    number,
    partition,
    search,
    service,
    text,
    values,
)
from dicomite.portal.web import Page, Portal, portal_url

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
MAX_FILTER = 64
# Common defined terms of Modality (PS3.3 §C.7.3.1.1.1).
MODALITIES = (
    "CR",
    "CT",
    "DX",
    "ES",
    "IO",
    "MG",
    "MR",
    "NM",
    "OT",
    "PT",
    "RF",
    "RG",
    "SC",
    "SM",
    "SR",
    "US",
    "XA",
    "XC",
)
STUDY_COUNTS = "ModalitiesInStudy,NumberOfStudyRelatedSeries,NumberOfStudyRelatedInstances"
SERIES_FIELDS = "SeriesNumber,SeriesDescription,NumberOfSeriesRelatedInstances"
INSTANCE_FIELDS = "InstanceNumber,NumberOfFrames,Rows"
ALL = (("limit", str(qido.MAX_LIMIT)),)  # of a study's series, of a series' instances


def routes(portal: Portal) -> list[Route]:
    study = "/dicom/studies/{study}"
    return [
        portal.route("/dicom/studies", list_studies),
        portal.route("/dicom/upload", dicom_upload.upload, methods=["POST"]),
        portal.route(study, study_page),
        portal.route(f"{study}/delete", delete_study, methods=["POST"]),
        *dicom_images.routes(portal, f"{study}/series/{{series}}/instances/{{instance}}"),
    ]


@dataclass(frozen=True)
class StudySearch:
    """The search form; each field is one QIDO-RS study attribute."""

    patient_name: str = ""
    patient_id: str = ""
    date_from: str = ""  # YYYY-MM-DD, as <input type=date> sends it
    date_to: str = ""
    modality: str = ""
    accession: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> StudySearch:
        return cls(**{f.name: query.get(f.name, "").strip()[:MAX_FILTER] for f in fields(cls)})

    def given(self) -> dict[str, str]:
        return {name: value for name, value in asdict(self).items() if value}

    def qido(self) -> list[tuple[str, str]]:
        """QIDO-RS parameters; patient names match fuzzily (a prefix of any name part)."""
        params = [("PatientName", self.patient_name), ("fuzzymatching", "true")]
        if not name_words(self.patient_name):  # nothing to match, as for "^" (QIDO warns)
            params = []
        params += [
            ("PatientID", self.patient_id),
            ("ModalitiesInStudy", self.modality.upper()),
            ("AccessionNumber", self.accession),
            ("StudyDate", self._dates()),
        ]
        return [(name, value) for name, value in params if value]

    def _dates(self) -> str:
        low, high = _date(self.date_from, "Study date from"), _date(self.date_to, "Study date to")
        if low and high and low > high:
            raise BadRequest("Study date from must be on or before Study date to.")
        return f"{low}-{high}" if low or high else ""


def _date(value: str, label: str) -> str:
    if not value:
        return ""
    try:
        return date.fromisoformat(value).strftime("%Y%m%d")
    except ValueError:
        raise BadRequest(f"{label} must be a date (YYYY-MM-DD).") from None


@dataclass(frozen=True)
class StudyRow:
    uid: str
    patient_name: str
    patient_id: str
    study_date: str
    modalities: str
    description: str
    accession: str
    series_count: int | None
    instance_count: int | None

    @classmethod
    def of(cls, found: JsonDataset) -> StudyRow:
        return cls(
            text(found, "StudyInstanceUID"),
            text(found, "PatientName"),
            text(found, "PatientID"),
            text(found, "StudyDate"),
            ", ".join(values(found, "ModalitiesInStudy")),
            text(found, "StudyDescription"),
            text(found, "AccessionNumber"),
            number(found, "NumberOfStudyRelatedSeries"),
            number(found, "NumberOfStudyRelatedInstances"),
        )


@dicom_page
def list_studies(page: Page) -> Response:
    wanted = StudySearch.of(page.query)
    size, offset = _paging(page.query)
    error = ""
    try:
        paging = [("limit", str(size + 1)), ("offset", str(offset))]
        found = search(
            page, qido.Scope(Level.STUDY), [*wanted.qido(), ("includefield", STUDY_COUNTS), *paging]
        )
    except BadRequest as problem:
        error, found = problem.message, []
    link = _list_link(wanted, size)
    return page.render(
        "dicom_studies.html",
        400 if error else 200,
        title="DICOM studies",
        error=error,
        studies=[StudyRow.of(item) for item in found[:size]],
        search=wanted,
        modalities=MODALITIES,
        page_sizes=PAGE_SIZES,
        size=size,
        offset=offset,
        here=link(offset),
        previous=link(max(0, offset - size)) if offset else "",
        next=link(offset + size) if len(found) > size else "",
        can_upload=policy.can_write_dicom(page.user),
    )


def _paging(query: Mapping[str, str]) -> tuple[int, int]:
    size = _integer(query.get("limit"))
    offset = _integer(query.get("offset"))
    return (size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE), min(offset or 0, 2**31)


def _integer(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() else None


def _list_link(wanted: StudySearch, size: int) -> Callable[[int], str]:
    sized = {"limit": str(size)} if size != DEFAULT_PAGE_SIZE else {}

    def link(offset: int) -> str:
        return portal_url("/dicom/studies", **wanted.given(), **sized, offset=str(offset or ""))

    return link


@dataclass(frozen=True)
class InstanceCard:
    uid: str
    number: int | None
    frames: int
    has_image: bool


@dataclass(frozen=True)
class SeriesSection:
    uid: str
    number: int | None
    description: str
    modality: str
    instance_count: int | None
    instances: list[InstanceCard]


@dicom_page
def study_page(page: Page) -> Response:
    study = _study(page)
    found = search(
        page, qido.Scope(Level.SERIES, study.uid), [("includefield", SERIES_FIELDS), *ALL]
    )
    series = sorted((_series(page, study.uid, item) for item in found), key=_in_order)
    return page.render(
        "dicom_study.html",
        title=study.description or "Study",
        study=study,
        series=series,
        can_delete=policy.can_write_dicom(page.user),
    )


def _study(page: Page) -> StudyRow:
    uid = page.params["study"]
    found = search(
        page, qido.Scope(Level.STUDY), [("StudyInstanceUID", uid), ("includefield", STUDY_COUNTS)]
    )
    if not found:
        raise NotFound(f"There is no study {uid}. It may have been deleted.")
    return StudyRow.of(found[0])


def _series(page: Page, study: str, found: JsonDataset) -> SeriesSection:
    uid = text(found, "SeriesInstanceUID")
    scope = qido.Scope(Level.INSTANCE, study, uid)
    instances = search(page, scope, [("includefield", INSTANCE_FIELDS), *ALL])
    cards = [
        InstanceCard(
            text(item, "SOPInstanceUID"),
            number(item, "InstanceNumber"),
            number(item, "NumberOfFrames") or 1,
            number(item, "Rows") is not None,
        )
        for item in instances
    ]
    return SeriesSection(
        uid,
        number(found, "SeriesNumber"),
        text(found, "SeriesDescription"),
        text(found, "Modality"),
        number(found, "NumberOfSeriesRelatedInstances"),
        sorted(cards, key=_in_order),
    )


def _in_order(item: InstanceCard | SeriesSection) -> tuple[bool, int, str]:
    """By number (DICOM's SeriesNumber / InstanceNumber); unnumbered ones last."""
    return item.number is None, item.number or 0, item.uid


@dicom_page
def delete_study(page: Page) -> Response:
    policy.require_write_dicom(page.user)
    dicom = service(page)
    study = page.params["study"]
    delete.delete_resource(dicom.store, dicom.blobs, study, partition=partition(page))
    return page.redirect("/dicom/studies", notice="study-deleted")
