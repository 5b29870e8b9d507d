"""Thumbnails (a Dicomite extension for the portal) from the wire, on both deployments."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from tests.fixtures.dicom import (
    TokenFactory,
    dicom_client,
    make_dataset,
    multipart,
    stow_headers,
    to_bytes,
)
from tests.fixtures.server import Server


def image(rows: int, columns: int, **attributes: object) -> pydicom.Dataset:
    pixels = (np.arange(rows * columns, dtype=np.uint32) % 4096).astype(np.uint16)
    return make_dataset(
        frames=1, Rows=rows, Columns=columns, PixelData=pixels.tobytes(), **attributes
    )


def store(writer: httpx.Client, *datasets: pydicom.Dataset) -> None:
    body = multipart(*(to_bytes(dataset) for dataset in datasets))
    response = writer.post("/studies", content=body, headers=stow_headers())
    assert response.status_code == 200, response.text


def thumbnail_path(dataset: pydicom.Dataset) -> str:
    return (
        f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}/thumbnail"
    )


def series_path(dataset: pydicom.Dataset) -> str:
    return f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}/thumbnail"


def size_of(response: httpx.Response) -> tuple[int, int]:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content)).size


@pytest.fixture(scope="module")
def wide(writer: httpx.Client) -> pydicom.Dataset:
    """300 columns by 100 rows: a thumbnail keeps the 3:1 aspect."""
    dataset = image(100, 300, WindowCenter=2000, WindowWidth=4000)
    store(writer, dataset)
    return dataset


def test_jpeg_by_default_and_png_on_request(writer: httpx.Client, wide: pydicom.Dataset) -> None:
    jpeg = writer.get(thumbnail_path(wide))
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
    width, height = size_of(jpeg)
    assert width == 128 and height in (42, 43)  # at most 128 by 128, aspect kept
    png = writer.get(thumbnail_path(wide), headers={"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).format == "PNG"
    assert size_of(png) == (width, height)
    assert size_of(writer.get(thumbnail_path(wide), headers={"Accept": "image/*"})) == (
        width,
        height,
    )


def test_size_parameter(writer: httpx.Client, wide: pydicom.Dataset) -> None:
    width, height = size_of(writer.get(f"{thumbnail_path(wide)}?size=64"))
    assert width == 64 and height in (21, 22)
    assert size_of(writer.get(f"{thumbnail_path(wide)}?size=512")) == (300, 100)  # not enlarged
    for bad in ("31", "513", "0", "abc", "-64", "1e2", ""):
        response = writer.get(f"{thumbnail_path(wide)}?size={bad}")
        assert response.status_code == 400, bad
        assert "size" in response.text


def test_small_images_are_not_enlarged(writer: httpx.Client) -> None:
    dataset = make_dataset(frames=3)  # 4 by 4, three frames: the first is shown
    store(writer, dataset)
    assert size_of(writer.get(thumbnail_path(dataset))) == (4, 4)


def test_caching_headers(writer: httpx.Client, wide: pydicom.Dataset) -> None:
    response = writer.get(thumbnail_path(wide))
    assert response.headers["cache-control"] == "private, max-age=3600"
    tag = response.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')
    again = writer.get(thumbnail_path(wide), headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.headers["etag"] == tag
    png = writer.get(thumbnail_path(wide), headers={"Accept": "image/png"})
    assert png.headers["etag"] != tag
    assert writer.get(f"{thumbnail_path(wide)}?size=64").headers["etag"] != tag


def test_series_thumbnail_is_the_lowest_instance_number(writer: httpx.Client) -> None:
    study, series = generate_uid(), generate_uid()
    prefix = generate_uid()[:50]
    datasets = [
        image(8, 8, InstanceNumber=3, StudyInstanceUID=study, SeriesInstanceUID=series),
        image(10, 40, StudyInstanceUID=study, SeriesInstanceUID=series),
        # a tie on InstanceNumber 2: the lower SOP Instance UID (".1" before ".2") wins
        image(
            16,
            32,
            InstanceNumber=2,
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            SOPInstanceUID=f"{prefix}.2",
        ),
        image(
            32,
            16,
            InstanceNumber=2,
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            SOPInstanceUID=f"{prefix}.1",
        ),
    ]
    for dataset in datasets:
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    store(writer, *datasets)
    assert size_of(writer.get(series_path(datasets[0]))) == (16, 32)
    response = writer.get(series_path(datasets[0]), headers={"Accept": "image/png"})
    assert response.headers["cache-control"] == "private, max-age=3600"
    assert "etag" in response.headers


def test_not_found_and_not_acceptable(writer: httpx.Client, wide: pydicom.Dataset) -> None:
    study, series = wide.StudyInstanceUID, wide.SeriesInstanceUID
    assert writer.get(
        f"/studies/{study}/series/{series}/instances/1.2.3/thumbnail"
    ).status_code == (404)
    assert writer.get(f"/studies/{study}/series/1.2.3/thumbnail").status_code == 404
    assert writer.get(f"/studies/1.2.3/series/{series}/thumbnail").status_code == 404
    refused = writer.get(thumbnail_path(wide), headers={"Accept": "image/gif"})
    assert refused.status_code == 406 and "image/jpeg" in refused.text
    assert writer.get(f"/studies/{study}/series/..%2Fx/thumbnail").status_code in (400, 404)


def test_no_pixel_data_is_404(writer: httpx.Client) -> None:
    dataset = make_dataset(frames=1, PixelData=None)
    store(writer, dataset)
    response = writer.get(thumbnail_path(dataset))
    assert response.status_code == 404 and "pixel data" in response.text
    assert writer.get(series_path(dataset)).status_code == 404


def test_reader_allowed_and_no_token_401(
    server: Server, dicom_token: TokenFactory, wide: pydicom.Dataset
) -> None:
    with dicom_client(server, dicom_token("Dicom.Read")) as reader:
        assert size_of(reader.get(thumbnail_path(wide)))[0] == 128
        assert reader.get(series_path(wide)).status_code == 200
    with dicom_client(server, None) as anonymous:
        for path in (thumbnail_path(wide), series_path(wide)):
            response = anonymous.get(path)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
    with dicom_client(server, "not-a-token", 2) as forged:
        assert forged.get(thumbnail_path(wide)).status_code == 401
