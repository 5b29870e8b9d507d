"""Thumbnails for the portal: a Dicomite extension, not part of DICOMweb nor of the Azure DICOM
service (which has no thumbnail endpoint).

``GET {base}/studies/{study}/series/{series}/instances/{instance}/thumbnail`` and
``GET {base}/studies/{study}/series/{series}/thumbnail`` are guarded like WADO-RS retrieval
(``Dicom.Read`` or ``Dicom.ReadWrite``). They return the first frame, windowed exactly as
``/rendered`` does (``dicom.retrieve.rendered``), scaled down to fit in ``size`` by ``size`` pixels
(default 128, from 32 to 512; the aspect ratio is kept and small images are never enlarged), as
JPEG (default) or PNG (``Accept``). A series is shown by its instance with the lowest
InstanceNumber (instances without one come last; ties go to the lowest SOP Instance UID).
Responses carry ``Cache-Control: private, max-age=3600`` and an ETag (``If-None-Match`` gives
304); an instance without pixel data is a 404 saying so."""

from __future__ import annotations

from typing import Any

from PIL import Image
from sqlalchemy import Connection

from dicomite.dicom.blobs.protocol import BlobStore
from dicomite.dicom.errors import BadRequest
from dicomite.dicom.index import schema
from dicomite.dicom.index.partitions import UNPARTITIONED, Partition
from dicomite.dicom.index.schema import StoredInstance
from dicomite.dicom.model import dicomjson
from dicomite.dicom.retrieve import rendered, wado

DEFAULT_SIZE, MIN_SIZE, MAX_SIZE = 128, 32, 512
JPEG_QUALITY = 85
CACHE_CONTROL = "private, max-age=3600"


def size(value: str | None) -> int:
    if value is None:
        return DEFAULT_SIZE
    if not (value.isascii() and value.isdigit()) or not MIN_SIZE <= int(value) <= MAX_SIZE:
        raise BadRequest(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE}.")
    return int(value)


def series_representative(
    db: Connection, study: str, series: str, partition: Partition = UNPARTITIONED
) -> StoredInstance | None:
    """The series' instance with the lowest InstanceNumber (then the lowest SOP Instance UID)."""
    found = schema.find_instances(db, study, series, partition=partition)
    instances = {instance.sop_uid: instance for instance in found}
    if not instances:
        return None
    numbers: dict[str, float] = {}
    for _, text in schema.metadata_of(db, study, series, partition=partition):
        attributes = dicomjson.decode(text)
        sop = _first(attributes, "00080018")
        if isinstance(sop, str):
            numbers[sop] = _number(_first(attributes, "00200013"))
    best = min(instances, key=lambda sop: (numbers.get(sop, float("inf")), sop))
    return instances[best]


def _first(attributes: dict[str, Any], tag: str) -> Any:
    values = attributes.get(tag, {}).get("Value") or [None]
    return values[0]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("inf")


def etag(instance: StoredInstance, media: str, pixels: int) -> str:
    return wado.etag([instance.sop_uid, instance.version, media, str(pixels)])


def thumbnail(
    blobs: BlobStore, instance: StoredInstance, media: str, pixels: int, limit: int
) -> bytes:
    image = rendered.frame_image(blobs, instance, 1, None, limit)
    image.thumbnail((pixels, pixels), Image.Resampling.LANCZOS)
    return rendered.encode(image, media, JPEG_QUALITY)
