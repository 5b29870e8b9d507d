"""Small CT studies a viewer can show: a phantom (a disc of soft tissue with a brighter rim on
air) that changes from slice to slice, with the image plane attributes cornerstone3D reads;
one series stored natively, one RLE Lossless (decoded in the browser)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SIZE = 96
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
    dataset.PixelSpacing, dataset.SliceThickness = [0.8, 0.8], 2.5
    dataset.ImagePositionPatient = [-38.4, -38.4, 2.5 * number]
    dataset.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    dataset.RescaleIntercept, dataset.RescaleSlope = -1024, 1
    dataset.WindowCenter, dataset.WindowWidth = 40, 400
    return dataset


def _phantom(number: int) -> np.ndarray:
    """Stored values (HU + 1024): air around a disc of soft tissue, a rim of bone, and a
    gradient across, all shifting a little with the slice."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    radius = np.hypot(x - SIZE / 2, y - SIZE / 2)
    values = np.where(radius < SIZE * 0.42, 1024 + 40 + x + 10 * number, 24)
    values = np.where((radius > SIZE * 0.36) & (radius < SIZE * 0.42), 1024 + 700, values)
    return values.astype(np.uint16)
