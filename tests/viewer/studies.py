"""Small CT studies a viewer can show: a chest-like phantom that changes from slice to slice,
with the image plane attributes cornerstone3D reads; one series stored natively, one RLE
Lossless (decoded in the browser)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SIZE = 128
SLICES = 3


@dataclass
class Study:
    patient_name: str
    patient_id: str
    uid: str = field(default_factory=generate_uid)
    series: tuple[str, str] = field(default_factory=lambda: (generate_uid(), generate_uid()))

    def instances(self) -> list[bytes]:
        """Each series' slices as Part 10 files: the first native, the second RLE Lossless."""
        return [
            _slice(self, series, number, compressed=index == 1)
            for index, series in enumerate(self.series)
            for number in range(1, SLICES + 1)
        ]


def _slice(study: Study, series: str, number: int, compressed: bool) -> bytes:
    dataset = _header(study, series, number)
    dataset.PixelData = _phantom(number).tobytes()
    if compressed:
        dataset.compress(RLELossless)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _header(study: Study, series: str, number: int) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = CT_IMAGE, meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study.uid, series
    dataset.PatientName, dataset.PatientID = study.patient_name, study.patient_id
    dataset.StudyDate, dataset.StudyTime, dataset.AccessionNumber = "20240115", "101500", "A1"
    dataset.StudyDescription, dataset.Modality = "Chest CT", "CT"
    dataset.SeriesNumber = study.series.index(series) + 1
    dataset.SeriesDescription = "Axial" if dataset.SeriesNumber == 1 else "Axial RLE"
    dataset.InstanceNumber = number
    dataset.Rows = dataset.Columns = SIZE
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.PixelRepresentation = 0
    dataset.PixelSpacing, dataset.SliceThickness = [2.5, 2.5], 2.5
    dataset.ImagePositionPatient = [-160, -160, 2.5 * number]
    dataset.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    dataset.RescaleIntercept, dataset.RescaleSlope = -1024, 1
    dataset.WindowCenter, dataset.WindowWidth = 40, 400
    return dataset


def _phantom(number: int) -> np.ndarray:
    """Stored values (HU + 1024) of a chest-like slice: air around a body of soft tissue with
    a rim of fat, two lungs, a spine and a heart, all shifting a little from slice to slice."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE - 0.5
    body = (x / 0.46) ** 2 + (y / 0.36) ** 2 < 1
    fat = (x / 0.46) ** 2 + (y / 0.36) ** 2 > 0.85
    lungs = ((abs(x) - 0.2) / 0.15) ** 2 + ((y + 0.02) / 0.24) ** 2 < 1
    spine = np.hypot(x, y - 0.24) < 0.06
    heart = np.hypot(x + 0.05, y + 0.03 * number) < 0.11
    hu = np.full((SIZE, SIZE), -1000.0)
    hu[body] = 40 + 30 * x[body]
    hu[body & fat] = -100
    hu[lungs] = -850 + 20 * number
    hu[heart] = 60
    hu[spine] = 700
    return (hu + 1024).astype(np.uint16)
