"""``dicomite dicom upload|search|get`` against the running server."""

from __future__ import annotations

import json
from pathlib import Path

from pydicom.uid import generate_uid

from tests.fixtures.dicom import make_dataset, to_bytes
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server


def test_upload_search_get(server: Server, admin: Admin, tmp_path: Path) -> None:
    app = admin.register(roles=("Dicom.ReadWrite",))
    assert app.secret is not None
    common = ["--client-id", app.app_id, "--client-secret", app.secret,
              "--url", f"{server.base_url}/dicom/v1", "--authority", server.authority]  # fmt: skip
    study = generate_uid()
    folder = tmp_path / "in" / "nested"
    folder.mkdir(parents=True)
    for number in range(3):
        (folder / f"{number}.dcm").write_bytes(to_bytes(make_dataset(study=study)))
    (tmp_path / "in" / "junk.txt").write_text("not dicom")
    first = server.cli("dicom", "upload", str(tmp_path / "in"), *common, check=False)
    assert first.returncode == 1
    assert "stored: 3  already present: 0  failed: 1" in first.stdout
    assert "junk.txt" in first.stdout and "272" in first.stdout
    again = server.cli("dicom", "upload", str(folder), *common)
    assert "stored: 0  already present: 3  failed: 0" in again.stdout

    found = server.cli("dicom", "search", "--filter", f"StudyInstanceUID={study}",
                       "--level", "instances", *common)  # fmt: skip
    assert len(json.loads(found.stdout)) == 3

    out = tmp_path / "out"
    got = server.cli("dicom", "get", study, *common, "--output", str(out))
    assert "3 instance(s)" in got.stdout
    assert sorted(p.read_bytes() for p in out.iterdir()) == sorted(
        p.read_bytes() for p in folder.iterdir()
    )
