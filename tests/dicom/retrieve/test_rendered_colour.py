"""Every colour image among pydicom's own test files renders as pydicom decodes it (issue 13,
item 11): ``examples_ybr_color.dcm`` came out solid green, its YBR converted twice.

The files are those of pydicom's installed package (``get_testdata_files()`` restricted to its
own folder; none that it downloads). Each is stored (v2 PUT: some share UIDs), then each of its
first and last frames is asked for as PNG through ``/frames/{n}/rendered`` and compared with
pydicom's RGB pixels: YBR converted to RGB, palettes applied, samples scaled to 8 bits.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_files
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut, convert_color_space
from pydicom.uid import generate_uid

from tests.fixtures.dicom import multipart, stow_headers

MAX_MEAN_ERROR = 4.0  # of 255, per channel
PNG = {"Accept": "image/png"}
# Colour files pydicom cannot decode, with the reason; none today. A file that fails to
# decode and is not listed here fails the test below, rather than being skipped.
NOT_DECODABLE: dict[str, str] = {}
# Colour files STOW refuses (43264) for attributes outside the pixel data, with the reason. They
# are still tested: stored as a copy with those attributes supplied, pixel data untouched.
STOW_REFUSED = {
    "ExplVR_BigEnd.dcm": "no PatientID; StudyDate '1997.04.24' is not a DA",
    "GDCMJ2K_TextGBR.dcm": "no PatientID",
    "SC_rgb_jls_lossy_line.dcm": "no StudyInstanceUID, SeriesInstanceUID or PatientID",
    "SC_rgb_jls_lossy_sample.dcm": "no StudyInstanceUID, SeriesInstanceUID or PatientID",
}


def _read(path: Path) -> pydicom.Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path)
        except Exception:
            return None


def _is_colour(dataset: pydicom.Dataset) -> bool:
    if "PixelData" not in dataset:
        return False
    space = str(dataset.get("PhotometricInterpretation", ""))
    return int(dataset.get("SamplesPerPixel", 1)) == 3 or space == "PALETTE COLOR"


def colour_files() -> list[Path]:
    """pydicom's own colour test files (no download: only those inside its package)."""
    package = Path(pydicom.__file__).resolve().parent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the data manager warns when it cannot download
        names = get_testdata_files()
    found = []
    for name in sorted(names):
        path = Path(name).resolve()
        dataset = _read(path) if path.is_relative_to(package) else None
        if dataset is not None and _is_colour(dataset):
            found.append(path)
    return found


COLOUR_FILES = colour_files()


def expected_rgb(dataset: pydicom.Dataset, frame: int) -> np.ndarray:
    """pydicom's own RGB pixels of ``frame`` (from 1), as 8-bit samples."""
    syntax = dataset.file_meta.TransferSyntaxUID
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pixels, properties = get_decoder(syntax).as_array(dataset, index=frame - 1)
    space = str(properties["photometric_interpretation"])
    if space == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, dataset)
        return _eight_bits(rgb, 8 * rgb.dtype.itemsize)
    if space in ("YBR_FULL", "YBR_FULL_422"):
        pixels = convert_color_space(pixels, space, "RGB")
    return _eight_bits(pixels, int(properties["bits_stored"]))


def _eight_bits(values: np.ndarray, bits: int) -> np.ndarray:
    return np.asarray(values, dtype=np.float64) * (255.0 / (2.0**bits - 1.0))


def instance_path(dataset: pydicom.Dataset) -> str:
    return (
        f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}"
    )


def test_the_files_are_found() -> None:
    names = {path.name for path in COLOUR_FILES}
    assert "examples_ybr_color.dcm" in names and "examples_palette.dcm" in names
    assert len(names) >= 30


def _supplemented(dataset: pydicom.Dataset) -> bytes:
    """The file with the attributes STOW requires supplied; its pixel data as it was."""
    dataset.PatientID = dataset.get("PatientID") or "PID-colour"
    dataset.StudyInstanceUID = dataset.get("StudyInstanceUID") or generate_uid()
    dataset.SeriesInstanceUID = dataset.get("SeriesInstanceUID") or generate_uid()
    dataset.StudyDate = "19970424"
    out = io.BytesIO()
    dataset.save_as(out)
    return out.getvalue()


def _store(writer_v2: httpx.Client, path: Path, dataset: pydicom.Dataset) -> None:
    data = path.read_bytes()
    if path.name in STOW_REFUSED:
        refused = writer_v2.put("/studies", content=multipart(data), headers=stow_headers())
        assert refused.status_code == 409 and "43264" in refused.text, refused.text
        data = _supplemented(dataset)
    stored = writer_v2.put("/studies", content=multipart(data), headers=stow_headers())
    assert stored.status_code in (200, 202), stored.text


@pytest.mark.parametrize("path", COLOUR_FILES, ids=lambda path: path.name)
def test_colour_images_render_as_pydicom_decodes_them(
    writer: httpx.Client, writer_v2: httpx.Client, path: Path
) -> None:
    dataset = _read(path)
    assert dataset is not None
    if path.name in NOT_DECODABLE:
        with pytest.raises((RuntimeError, ValueError, NotImplementedError)):
            expected_rgb(dataset, 1)  # listed: it must still fail to decode
        return
    _store(writer_v2, path, dataset)
    count = int(dataset.get("NumberOfFrames", 1) or 1)
    for frame in sorted({1, count}):
        response = writer.get(f"{instance_path(dataset)}/frames/{frame}/rendered", headers=PNG)
        assert response.status_code == 200, response.text
        image = Image.open(io.BytesIO(response.content))
        assert image.mode == "RGB", image.mode
        error = np.abs(np.asarray(image, dtype=np.float64) - expected_rgb(dataset, frame))
        mean_error = error.mean(axis=(0, 1))
        assert (mean_error <= MAX_MEAN_ERROR).all(), (frame, mean_error.round(2).tolist())
