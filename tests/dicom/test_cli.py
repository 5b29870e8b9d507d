"""``dicomite dicom upload|search|get`` against the running server: in this process (Typer's
runner), but for the test of piped output, which runs the real ``dicomite`` as a program."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.fixtures.dicom import make_dataset, to_bytes
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server


def test_upload_search_get(server: Server, admin: Admin, tmp_path: Path) -> None:
    common = credentials(server, admin)
    study = generate_uid()
    folder = tmp_path / "in" / "nested"
    folder.mkdir(parents=True)
    for number in range(3):
        (folder / f"{number}.dcm").write_bytes(to_bytes(make_dataset(study=study)))
    (tmp_path / "in" / "junk.txt").write_text("not dicom")
    first = server.invoke("dicom", "upload", str(tmp_path / "in"), *common, check=False)
    assert first.returncode == 1
    assert "stored: 3  already present: 0  failed: 1" in first.stdout
    assert "junk.txt" in first.stdout and "272" in first.stdout
    again = server.invoke("dicom", "upload", str(folder), *common)
    assert "stored: 0  already present: 3  failed: 0" in again.stdout

    found = server.invoke(
        "dicom", "search", "--filter", f"StudyInstanceUID={study}", "--level", "instances", *common
    )
    assert len(json.loads(found.stdout)) == 3

    out = tmp_path / "out"
    got = server.invoke("dicom", "get", study, *common, "--output", str(out))
    assert "3 instance(s)" in got.stdout
    assert sorted(p.read_bytes() for p in out.iterdir()) == sorted(
        p.read_bytes() for p in folder.iterdir()
    )


def credentials(server: Server, admin: Admin) -> list[str]:
    app = admin.register(roles=("Dicom.ReadWrite",))
    assert app.secret is not None
    return [
        "--client-id",
        app.app_id,
        "--client-secret",
        app.secret,
        "--url",
        f"{server.base_url}/dicom/v1",
        "--authority",
        server.authority,
    ]


def same_uid_folder(folder: Path, groups: int = 3, copies: int = 8) -> list[list[Path]]:
    """``groups`` instances, each as ``copies`` files that share its SOP Instance UID (their
    patient names differ, as pydicom's test files differ in transfer syntax)."""
    written = []
    for group in range(groups):
        study, series, sop = generate_uid(), generate_uid(), generate_uid()
        paths = []
        for copy in range(copies):
            path = folder / f"g{group}-c{copy}.dcm"
            dataset = make_dataset(study, series, sop, PatientName=f"Copy^{copy}")
            path.write_bytes(to_bytes(dataset))
            paths.append(path)
        written.append(paths)
    return written


def test_files_sharing_a_sop_instance_uid_are_sent_one_after_another(
    server: Server, admin: Admin, tmp_path: Path
) -> None:
    """Sent at once, files of one UID race each other (45071, a different set each run); one
    after another, the first in path order is stored and the others are already present."""
    common = credentials(server, admin)
    for run in range(2):
        folder = tmp_path / f"run{run}"
        folder.mkdir()
        groups = same_uid_folder(folder)
        result = server.invoke(
            "dicom", "upload", str(folder), "--concurrency", "4", *common, check=False
        )
        assert "45071" not in result.stdout, result.stdout
        assert result.returncode == 0, result.stdout
        assert "stored: 3  already present: 21  failed: 0" in result.stdout
        for paths in groups:
            stored = dcmread(paths[0])
            meta = server.invoke("dicom", "get", stored.StudyInstanceUID, *common, "--metadata")
            assert json.loads(meta.stdout)[0]["00100010"]["Value"] == [{"Alphabetic": "Copy^0"}]


def test_a_failure_shows_the_servers_reason(server: Server, admin: Admin, tmp_path: Path) -> None:
    common = credentials(server, admin)
    path = tmp_path / "no-series.dcm"
    path.write_bytes(to_bytes(make_dataset(SeriesInstanceUID=None)))
    result = server.invoke("dicom", "upload", str(path), *common, check=False)
    assert result.returncode == 1
    line = next(line for line in result.stdout.splitlines() if "no-series.dcm" in line)
    # The server's ErrorComment names the missing attribute, SeriesInstanceUID (0020,000E).
    assert "43264 (validation failure): " in line and "(0020,000e)" in line.lower(), line


# How the client prints is the client's: one deployment suffices.
@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_a_long_path_is_one_line_when_piped(server: Server, admin: Admin, tmp_path: Path) -> None:
    common = credentials(server, admin)
    folder = tmp_path / ("a-rather-long-folder-name-" * 4) / "nested"
    folder.mkdir(parents=True)
    path = folder / "not-dicom-with-a-long-file-name.dcm"
    path.write_text("not dicom")
    result = server.cli("dicom", "upload", str(path), *common, check=False)
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if "failed " in line]
    assert f"failed {path}: 272 (processing failure)" in line, result.stdout


def test_search_prints_a_table_or_json(server: Server, admin: Admin, tmp_path: Path) -> None:
    common = credentials(server, admin)
    study = generate_uid()
    path = tmp_path / "one.dcm"
    dataset = make_dataset(study, PatientName="Table^Tess", PatientID="TAB-1", Modality="MR")
    path.write_bytes(to_bytes(dataset))
    server.invoke("dicom", "upload", str(path), *common)
    search = ["dicom", "search", "--filter", f"StudyInstanceUID={study}", *common]

    table = server.invoke(*search, "--output", "table").stdout
    [row] = [line for line in table.splitlines() if study in line]
    assert "Table, Tess" in row and "TAB-1" in row and "MR" in row and "2024-01-15" in row
    assert "Patient name" in table and "Study Instance UID" in table

    as_json = json.loads(server.invoke(*search, "--output", "json").stdout)
    assert as_json[0]["0020000D"]["Value"] == [study]
    piped = json.loads(server.invoke(*search).stdout)  # not a terminal: JSON for programs
    assert piped == as_json
    nothing = ["--filter", f"StudyInstanceUID={generate_uid()}"]
    empty = server.invoke("dicom", "search", *nothing, *common, "--output", "table").stdout
    assert "No studies match." in empty
    series = server.invoke(*search, "--level", "series", "--output", "table").stdout
    assert dataset.SeriesInstanceUID in series and "MR" in series


def test_tags_and_operations(server: Server, admin: Admin) -> None:
    common = credentials(server, admin)
    added = server.invoke("dicom", "tags", "add", "PatientSize", "--level", "study", *common)
    operation_id = added.stdout.split("Operation ", 1)[1].split()[0]
    assert json.loads(added.stdout.split("\n", 1)[1])["status"] == "completed"
    try:
        listed = json.loads(server.invoke("dicom", "tags", "list", *common).stdout)
        assert [(t["path"], t["status"]) for t in listed] == [("00101020", "ready")]
        disabled = server.invoke("dicom", "tags", "disable", "00101020", *common).stdout
        assert json.loads(disabled)["queryStatus"] == "disabled"
        enabled = server.invoke("dicom", "tags", "enable", "PatientSize", *common).stdout
        assert json.loads(enabled)["queryStatus"] == "enabled"
        assert isinstance(
            json.loads(server.invoke("dicom", "tags", "errors", "PatientSize", *common).stdout),
            list,
        )
        shown = server.invoke("dicom", "operations", "show", operation_id, *common).stdout
        assert json.loads(shown)["percentComplete"] == 100
        missing = server.invoke("dicom", "tags", "show", "PatientWeight", *common, check=False)
        assert missing.returncode == 1 and "HTTP 404" in missing.stdout + missing.stderr
    finally:
        deleted = server.invoke("dicom", "tags", "delete", "PatientSize", *common)
    assert "Deleted PatientSize." in deleted.stdout


def test_export(server: Server, admin: Admin, tmp_path: Path) -> None:
    common = credentials(server, admin)
    dataset = make_dataset()
    (tmp_path / "one.dcm").write_bytes(to_bytes(dataset))
    server.invoke("dicom", "upload", str(tmp_path / "one.dcm"), *common)
    folder = f"cli-{generate_uid()}"
    ran = server.invoke(
        "dicom", "export", dataset.StudyInstanceUID, "1.2.3.4", "--folder", folder, *common
    )
    done = json.loads(ran.stdout.split("\n", 1)[1])
    assert (done["type"], done["status"]) == ("export", "completed")
    assert (done["results"]["exported"], done["results"]["skipped"]) == (1, 1)
    results = server.data_dir / "exports" / folder / done["operationId"] / "results"
    assert [p.name for p in results.rglob("*.dcm")] == [f"{dataset.SOPInstanceUID}.dcm"]
    refused = server.invoke("dicom", "export", "--folder", "../up", *common, check=False)
    assert refused.returncode == 1 and "HTTP 400" in refused.stdout + refused.stderr


def test_update(server: Server, admin: Admin, tmp_path: Path) -> None:
    common = credentials(server, admin)
    dataset = make_dataset()
    (tmp_path / "one.dcm").write_bytes(to_bytes(dataset))
    server.invoke("dicom", "upload", str(tmp_path / "one.dcm"), *common)
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"00081030": {"vr": "LO", "Value": ["From a file"]}}))
    study = dataset.StudyInstanceUID
    assigned = ["--set", "PatientName=Roe^Jane", "--change-dataset", str(changes)]
    ran = server.invoke("dicom", "update", study, *assigned, *common)
    done = json.loads(ran.stdout.split("\n", 1)[1])
    assert (done["type"], done["status"], done["results"]) == (
        "update",
        "completed",
        {"studyUpdated": 1, "instanceUpdated": 1},
    )
    search = ["dicom", "search", "--filter", f"StudyInstanceUID={study}", "-o", "json", *common]
    found = json.loads(server.invoke(*search).stdout)
    assert found[0]["00100010"]["Value"] == [{"Alphabetic": "Roe^Jane"}]
    assert found[0]["00081030"]["Value"] == ["From a file"]
    refused = server.invoke("dicom", "update", study, "--set", "Modality=MR", *common, check=False)
    assert refused.returncode == 1 and "HTTP 400" in refused.stdout + refused.stderr
