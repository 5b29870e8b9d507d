"""Rendered resources (PS3.18 §10.4.1.1.3; conformance statement "Retrieve Rendered Image"):
one frame as JPEG (default) or PNG, with the modality and VOI LUTs applied (window centre and
width when the instance has them, else the frame's own range), or the window the request asks
for (``window=center,width,function``, PS3.18 §8.3.5.1.3)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.pixels.processing import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi_lut,
    convert_color_space,
)

from dicomite.dicom.blobs.protocol import BlobStore
from dicomite.dicom.errors import BadRequest, NotAcceptable, NotFound
from dicomite.dicom.index.schema import StoredInstance
from dicomite.dicom.multipart import MediaType
from dicomite.dicom.retrieve import frames

JPEG, PNG = "image/jpeg", "image/png"


def negotiate(accept: str | None) -> str:
    if not accept:
        return JPEG
    for item in accept.split(","):
        media = MediaType.parse(item).value
        if media in (JPEG, PNG):
            return media
        if media in ("*/*", "image/*"):
            return JPEG
    raise NotAcceptable(f"Rendered images are {JPEG} or {PNG}, not '{accept[:80]}'.")


def quality(value: str | None) -> int:
    if value is None:
        return 100
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 100:
        raise BadRequest("quality must be an integer from 1 to 100.")
    return int(value)


def frame_number(text: str | None, count: int) -> int:
    if text is None:
        return 1
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise BadRequest(f"'{text[:40]}' is not a frame number (frames start at 1).")
    if int(text) > count:
        raise NotFound(f"The instance has {count} frame(s); frame {text} does not exist.")
    return int(text)


@dataclass(frozen=True)
class Window:
    """A VOI window in modality units (HU for CT); PS3.3 §C.11.2.1.2.1 gives the functions."""

    center: float
    width: float
    function: str = "linear"

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Modality values (float32, overwritten: no full-size temporary) to 8-bit values."""
        c, w = self.center, self.width
        if self.function == "sigmoid":  # 255 / (1 + exp(-4 (x - c) / w))
            values -= c
            values *= -4.0 / w
            with np.errstate(over="ignore"):
                np.exp(values, out=values)
            values += 1.0
            np.divide(255.0, values, out=values)
            return values.astype(np.uint8)
        if self.function == "linear-exact":  # ((x - c) / w + 0.5) * 255
            return _ramp(values, c - w / 2, w)
        if w <= 1:  # the linear function's width-1 case: a threshold at c - 0.5
            return np.where(values > c - 0.5, np.uint8(255), np.uint8(0))
        return _ramp(values, c - 0.5 - (w - 1) / 2, w - 1)  # ((x - (c - 0.5)) / (w - 1) + 0.5)


def _ramp(values: np.ndarray, low: float, span: float) -> np.ndarray:
    """``values`` from ``low`` to ``low + span`` as 0..255, clipped; computed in place."""
    values -= low
    values *= 255.0 / span
    np.clip(values, 0.0, 255.0, out=values)
    return values.astype(np.uint8)


WINDOW_FUNCTIONS = ("linear", "linear-exact", "sigmoid")


def window(text: str | None) -> Window | None:
    """The ``window`` query parameter: ``center,width[,function]`` (function default linear)."""
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    numbers = [_finite(part) for part in parts[:2]]
    function = parts[2].lower() if len(parts) == 3 else "linear"
    if len(parts) not in (2, 3) or None in numbers or function not in WINDOW_FUNCTIONS:
        raise BadRequest(
            "window must be 'center,width[,function]' with a positive width and a function of "
            f"{', '.join(WINDOW_FUNCTIONS)}, not '{text[:60]}'."
        )
    center, width = (float(n) for n in numbers)  # type: ignore[arg-type]
    if width <= 0:
        raise BadRequest(f"The window width must be positive, not {parts[1][:20]}.")
    return Window(center, width, function)


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def render(
    blobs: BlobStore,
    instance: StoredInstance,
    frame: int,
    media: str,
    level: int,
    voi: Window | None,
    limit: int,
) -> bytes:
    return encode(frame_image(blobs, instance, frame, voi, limit), media, level)


def frame_image(
    blobs: BlobStore, instance: StoredInstance, frame: int, voi: Window | None, limit: int
) -> Image.Image:
    """One frame of the instance, windowed, as an 8-bit greyscale or RGB image; only that
    frame is read (``dicom.retrieve.frames``)."""
    with frames.opened(blobs, instance, limit) as source:
        decoded = source.decoded(frame, working_bytes(source.dataset))
        return _image(source, decoded, voi)


def working_bytes(dataset: Dataset) -> int:
    """What rendering holds per decoded sample besides the decoding (``frames`` counts that):
    a float32 copy of the values, the 8-bit image and PIL's copy of it (8-bit colour needs
    no scaling, only PIL's copy); a palette's RGB
    (three 16-bit samples per stored one, then their float32 scaling); the LUT sequences'
    indexing (PS3.3 §C.11.1, §C.11.2) and their integer outputs."""
    if dataset.get("PhotometricInterpretation") == "PALETTE COLOR":
        return PALETTE_BYTES
    if "ModalityLUTSequence" in dataset or "VOILUTSequence" in dataset:
        return LUT_BYTES
    if dataset.get("SamplesPerPixel") == 3 and dataset.get("BitsAllocated") == 8:
        return 2  # no scaling: only PIL's copy (4 bytes a pixel)
    return 8


PALETTE_BYTES, LUT_BYTES, YBR_BYTES = 32, 24, 40


def encode(image: Image.Image, media: str, level: int) -> bytes:
    out = io.BytesIO()
    if media == JPEG:  # the image is L or RGB already: no converted copy
        image.save(out, "JPEG", quality=level)
    else:
        image.save(out, "PNG")
    return out.getvalue()


# Colour spaces pydicom's decoding may leave for us to convert; it converts YBR_FULL and
# YBR_FULL_422 itself, and JPEG 2000 decoding undoes YBR_ICT and YBR_RCT (PS3.5 §8.2.4).
CONVERTED_HERE = ("YBR_FULL", "YBR_FULL_422")


def _image(source: frames.Source, decoded: frames.Decoded, voi: Window | None) -> Image.Image:
    """The decoded frame as 8-bit greyscale or RGB. Colour is taken from what the decoding
    says the pixels are (``decoded.photometric``), not from the stored attribute: converting
    YBR that pydicom already converted turned colour images green."""
    dataset, pixels, space = source.dataset, decoded.pixels, decoded.photometric
    if space == "PALETTE COLOR":  # PS3.3 §C.7.6.3.1.5
        rgb = apply_color_lut(pixels, dataset)
        return Image.fromarray(_full_range(rgb, 8 * rgb.dtype.itemsize), "RGB")
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        if space in CONVERTED_HERE:  # pydicom's conversion holds float64 copies
            source.check_fits(YBR_BYTES)
            pixels = convert_color_space(pixels, space, "RGB")
        bits = int(decoded.properties.get("bits_stored", 8 * pixels.dtype.itemsize))
        return Image.fromarray(_full_range(pixels, bits), "RGB")
    values = _modality_values(pixels, dataset)
    if voi is None and "VOILUTSequence" not in dataset:
        voi = _stored_window(dataset)
    if voi is not None:
        scaled = voi.apply(values)
    else:
        if "WindowCenter" in dataset:  # with a VOI LUT Sequence, which pydicom prefers
            values = np.asarray(apply_voi_lut(values, dataset), dtype=np.float32)
        scaled = _to_uint8(values)
    if space == "MONOCHROME1":
        np.subtract(255, scaled, out=scaled)
    return Image.fromarray(scaled, "L")


def _modality_values(pixels: np.ndarray, dataset: Dataset) -> np.ndarray:
    """Modality values as float32 (PS3.3 §C.11.1): through the Modality LUT when there is
    one, else the rescale slope and intercept applied in place (pydicom makes float64)."""
    if "ModalityLUTSequence" in dataset:
        return np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float32)
    values = pixels.astype(np.float32)
    if "RescaleSlope" in dataset and "RescaleIntercept" in dataset:
        values *= _number(dataset.RescaleSlope, 1.0)
        values += _number(dataset.RescaleIntercept, 0.0)
    return values


def _stored_window(dataset: Dataset) -> Window | None:
    """The instance's first window (PS3.3 §C.11.2.1.2), when it has a usable one."""
    center = _number(dataset.get("WindowCenter"), math.nan)
    width = _number(dataset.get("WindowWidth"), math.nan)
    function = str(dataset.get("VOILUTFunction") or "LINEAR").lower().replace("_", "-")
    if not (math.isfinite(center) and math.isfinite(width) and width > 0):
        return None
    return Window(center, width, function if function in WINDOW_FUNCTIONS else "linear")


def _number(value: object, default: float) -> float:
    """A decimal attribute's (first) value; ``default`` when absent or not a number."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = value[0] if len(value) else None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _full_range(values: np.ndarray, bits: int) -> np.ndarray:
    """Samples of ``bits`` bits as 8-bit values, 0 and 2**bits - 1 kept at 0 and 255."""
    if values.dtype == np.uint8 or bits <= 0:
        return values.astype(np.uint8, copy=False)
    scaled = values.astype(np.float32)
    scaled *= 255.0 / (2.0**bits - 1.0)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return scaled.astype(np.uint8)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Float32 values (overwritten) stretched from their minimum to their maximum."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return _ramp(values, low, high - low)
