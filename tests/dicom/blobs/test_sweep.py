"""The blob sweep on the real folder store: files that come and go while it runs."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from dicomite.bootstrap import Context
from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.blobs.sweep import sweep


def _old_key(seconds_ago: float) -> str:
    """A blob key (UUIDv7) written ``seconds_ago``."""
    millis = int((time.time() - seconds_ago) * 1000)
    value = uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0x2 << 62) | uuid.uuid4().int >> 68)
    return f"instances/{str(value)[:8]}/{value}.dcm"


def _left_by_a_crash(blobs: FileSystemBlobStore, key: str, seconds_ago: float) -> Path:
    """A writer's temporary file, last written ``seconds_ago``."""
    path = Path(f"{blobs.local_path(key)}.4242.partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half an instance")
    then = time.time() - seconds_ago
    os.utime(path, (then, then))
    return path


class _CommittedWhileListed(FileSystemBlobStore):
    """The folder store, with a writer committing ``committing`` (renaming it to its key) just
    after the sweep listed it and before the sweep looks at it."""

    def __init__(self, root: Path, committing: Path) -> None:
        super().__init__(root)
        self.committing = committing

    def temporary_files(self) -> Iterator[Path]:
        for path in super().temporary_files():
            if path == self.committing:
                os.replace(path, str(path).removesuffix(".4242.partial"))
            yield path


def test_a_file_committed_between_listing_and_stat_is_skipped(
    context: Context, tmp_path: Path
) -> None:
    root = tmp_path / "blobs"
    blobs = FileSystemBlobStore(root)
    committed_key, crashed_key, orphan = _old_key(10), _old_key(7200), _old_key(7200)
    committing = _left_by_a_crash(blobs, committed_key, 7200)
    crashed = _left_by_a_crash(blobs, crashed_key, 7200)
    with blobs.writer(orphan) as writer:
        writer.write(b"x")
        writer.commit()
    sweeping = _CommittedWhileListed(root, committing)
    assert sweep(context.store, sweeping) == (1, 1)  # the rest of the sweep ran
    assert not crashed.exists()
    assert set(blobs.keys()) == {committed_key}  # the committed blob is untouched
