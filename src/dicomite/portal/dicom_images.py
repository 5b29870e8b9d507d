"""An instance: its view (rendered frame, frame selector, window presets, key attributes) and
the images the DICOM pages show, served to the signed-in person's cookie by the DICOM domain's
own rendering (``retrieve.rendered``, ``retrieve.thumbnails``). Images are private to that person's
browser cache (``Cache-Control: private``) and revalidated by ETag."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydicom.uid import UID
from starlette.responses import Response
from starlette.routing import Route

from dicomite.dicom.errors import BadRequest, NotFound
from dicomite.dicom.index import schema
from dicomite.dicom.index.schema import StoredInstance
from dicomite.dicom.retrieve import rendered, thumbnails, wado
from dicomite.portal.dicom_access import dicom_page, partition, service, text
from dicomite.portal.web import Page, Portal, portal_url

# What the instance view lists, in this order (label, keyword); empty ones are left out.
KEY_ATTRIBUTES = (
    ("Patient name", "PatientName"),
    ("Patient ID", "PatientID"),
    ("Patient birth date", "PatientBirthDate"),
    ("Patient sex", "PatientSex"),
    ("Study date", "StudyDate"),
    ("Study description", "StudyDescription"),
    ("Accession number", "AccessionNumber"),
    ("Modality", "Modality"),
    ("Series number", "SeriesNumber"),
    ("Series description", "SeriesDescription"),
    ("Body part examined", "BodyPartExamined"),
    ("Instance number", "InstanceNumber"),
    ("Rows", "Rows"),
    ("Columns", "Columns"),
    ("Number of frames", "NumberOfFrames"),
    ("Photometric interpretation", "PhotometricInterpretation"),
    ("Bits stored", "BitsStored"),
    ("Pixel spacing (mm)", "PixelSpacing"),
    ("Slice thickness (mm)", "SliceThickness"),
    ("Window center", "WindowCenter"),
    ("Window width", "WindowWidth"),
    ("Rescale intercept", "RescaleIntercept"),
    ("Rescale slope", "RescaleSlope"),
    ("Manufacturer", "Manufacturer"),
    ("Manufacturer model name", "ManufacturerModelName"),
)


@dataclass(frozen=True)
class Window:
    """A VOI window preset (PS3.3 §C.11.2.1.2): centre and width in modality units (HU for CT);
    none for the window the file declares."""

    key: str
    name: str
    center: float | None = None
    width: float | None = None

    @property
    def voi(self) -> rendered.Window | None:
        if self.center is None or self.width is None:
            return None
        return rendered.Window(self.center, self.width)

    @property
    def label(self) -> str:
        return self.name if self.width is None else f"{self.name} W{self.width:g}/L{self.center:g}"


WINDOWS = (
    Window("", "Default (from the file)"),
    Window("lung", "Lung", -600, 1500),
    Window("bone", "Bone", 300, 2000),
    Window("soft-tissue", "Soft tissue", 40, 400),
    Window("brain", "Brain", 40, 80),
)
_WINDOWS = {window.key: window for window in WINDOWS}


def routes(portal: Portal, instance: str) -> list[Route]:
    return [
        portal.route(instance, instance_page),
        portal.route(f"{instance}/thumbnail", thumbnail),
        portal.route(f"{instance}/rendered", rendered_frame),
    ]


def stored_instance(page: Page) -> StoredInstance:
    path = page.params
    with page.read_connection() as connection:
        found = schema.find_instances(
            connection, path["study"], path["series"], path["instance"], partition=partition(page)
        )
    if not found:
        raise NotFound("There is no such instance in this series. It may have been deleted.")
    return found[0]


def instance_path(instance: StoredInstance) -> str:
    return (
        f"/dicom/studies/{instance.study_uid}/series/{instance.series_uid}"
        f"/instances/{instance.sop_uid}"
    )


def window_of(page: Page) -> Window:
    key = page.query.get("window", "")
    if key not in _WINDOWS:
        raise BadRequest(f"'{key[:40]}' is not a window preset.")
    return _WINDOWS[key]


@dicom_page
def instance_page(page: Page) -> Response:
    instance = stored_instance(page)
    frame = rendered.frame_number(page.query.get("frame"), instance.number_of_frames)
    window = window_of(page)
    with page.read_connection() as connection:
        (_, stored), *_ = schema.metadata_of(
            connection,
            instance.study_uid,
            instance.series_uid,
            instance.sop_uid,
            partition=partition(page),
        )
    dataset = json.loads(stored)
    path = instance_path(instance)

    def link(frame: int, window: str, suffix: str = "") -> str:
        return portal_url(path + suffix, frame=str(frame) if frame > 1 else "", window=window)

    return page.render(
        "dicom_instance.html",
        title=_title(dataset),
        instance=instance,
        frame=frame,
        window=window,
        windows=WINDOWS,
        link=link,
        study_label=_study_label(dataset),
        attributes=_attributes(dataset, instance),
        greyscale=text(dataset, "PhotometricInterpretation").startswith("MONOCHROME"),
        rows=text(dataset, "Rows"),
        columns=text(dataset, "Columns"),
    )


def _title(dataset: dict[str, Any]) -> str:
    number = text(dataset, "InstanceNumber")
    return f"Instance {number}" if number else "Instance"


def _study_label(dataset: dict[str, Any]) -> str:
    return text(dataset, "StudyDescription") or text(dataset, "PatientName") or "Study"


def _attributes(dataset: dict[str, Any], instance: StoredInstance) -> list[tuple[str, str]]:
    shown = [(label, text(dataset, keyword)) for label, keyword in KEY_ATTRIBUTES]
    shown += [
        ("SOP Class", UID(instance.sop_class_uid).name),
        ("SOP Instance UID", instance.sop_uid),
        ("Transfer syntax", UID(instance.transfer_syntax_uid).name),
        ("Size", f"{instance.size / 1024:,.1f} KB"),
    ]
    return [(label, value) for label, value in shown if value]


@dicom_page
def thumbnail(page: Page) -> Response:
    instance = stored_instance(page)
    pixels = thumbnails.size(page.query.get("size"))
    media = rendered.JPEG
    tag = thumbnails.etag(instance, media, pixels)
    blobs, limit = service(page).blobs, service(page).max_inflated_bytes
    return _image(
        page, tag, media, lambda: thumbnails.thumbnail(blobs, instance, media, pixels, limit)
    )


@dicom_page
def rendered_frame(page: Page) -> Response:
    instance = stored_instance(page)
    frame = rendered.frame_number(page.query.get("frame"), instance.number_of_frames)
    window = window_of(page)
    tag = wado.etag([instance.sop_uid, instance.version, str(frame), window.key, rendered.PNG])
    blobs, voi, limit = service(page).blobs, window.voi, service(page).max_inflated_bytes
    return _image(
        page,
        tag,
        rendered.PNG,
        lambda: rendered.render(blobs, instance, frame, rendered.PNG, 100, voi, limit),
    )


def _image(page: Page, tag: str, media: str, make: Callable[[], bytes]) -> Response:
    headers = {"ETag": tag, "Cache-Control": thumbnails.CACHE_CONTROL}
    if page.request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return Response(make(), media_type=media, headers=headers)
