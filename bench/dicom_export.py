#!/usr/bin/env python3
"""Export throughput: how fast an export writes to the folder destination.

Starts `dicomite serve --http` at its defaults (v2 API), stores --instances CT instances of about
--instance-kib KiB each (10 a study), then exports them all (`POST /v1/export`, no source, a
folder below the server's export folder) and times the operation from the POST to its 200.
Target: >= 50 MB/s written. Checks every file arrived with its size. Results in
bench/results/dicom_export.json; exit status 1 when the export or a check failed.

    .venv/bin/python bench/dicom_export.py                      # 2,000 instances of 512 KiB
    .venv/bin/python bench/dicom_export.py --instances 100      # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _dicom_base import STOW_CONCURRENCY, run_operation
from _dicom_client import stow_batches
from _dicom_dicomite import start_servers
from _processes import RESULTS_DIR, base_meta, raise_on_sigterm
from _report import write_results
from dicom_corpus import to_bytes
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

RESULTS_FILE = RESULTS_DIR / "dicom_export.json"
TARGET_MB_PER_S = 50.0
PER_STUDY = 10


def instance(study: str, series: str, columns: int, pixels: bytes) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
    dataset.PatientID, dataset.Modality = "EXPORT-BENCH", "CT"
    dataset.Rows, dataset.Columns = 512, columns
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 16, 15
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels
    return to_bytes(dataset)


def study_maker(kib: int) -> Callable[[], list[bytes]]:
    columns = max(1, kib * 1024 // (512 * 2))
    pixels = np.random.default_rng(1).integers(0, 4096, 512 * columns, np.uint16).tobytes()

    def make() -> list[bytes]:
        study, series = generate_uid(), generate_uid()
        return [instance(study, series, columns, pixels) for _ in range(PER_STUDY)]

    return make


def run(args: argparse.Namespace) -> int:
    out: dict[str, Any] = {**base_meta(), "instances": args.instances, "kib": args.instance_kib}
    with (
        tempfile.TemporaryDirectory(prefix="dicom-bench-export-") as folder,
        contextlib.ExitStack() as stack,
    ):
        work = Path(folder)
        server = start_servers(stack, "dicomite", work, args.workers, None)[0]
        server.fresh_auth()
        studies = max(1, args.instances // PER_STUDY)
        batches = [study_maker(args.instance_kib)] * studies
        stats, elapsed = asyncio.run(stow_batches(server, batches, STOW_CONCURRENCY, 15))
        print(f"stored {stats.instances} instances in {elapsed:.0f} s", flush=True)
        if stats.failed_instances:
            raise SystemExit(f"STOW failed: {stats.first_error}")
        body = {"destination": {"type": "folder", "settings": {"path": "bench"}}}
        seconds, operation = run_operation(server, "/export", body)
        server.check_alive()
        files = list((work / "dicomite" / "exports" / "bench").rglob("*.dcm"))
        written = sum(path.stat().st_size for path in files)
    rate = written / seconds / 1e6
    failed = operation.get("status") != "succeeded" or len(files) != stats.instances
    print(
        f"exported {len(files)} files, {written / 1e6:.0f} MB in {seconds:.2f} s: "
        f"{rate:.0f} MB/s (target >= {TARGET_MB_PER_S:.0f})",
        flush=True,
    )
    out["export"] = {"seconds": seconds, "bytes": written, "mb_per_s": rate, "files": len(files)}
    out["operation"] = operation
    out["targets"] = {"mb_per_s": {"target": TARGET_MB_PER_S, "met": rate >= TARGET_MB_PER_S}}
    write_results(RESULTS_FILE, out)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=2_000)
    parser.add_argument("--instance-kib", type=int, default=512)
    parser.add_argument("--workers", type=int, default=None, help="default: dicomite's own")
    args = parser.parse_args(argv)
    if not 10 <= args.instances <= 1_000_000 or not 1 <= args.instance_kib <= 65_536:
        parser.error("--instances must be 10..1000000 and --instance-kib 1..65536")
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
