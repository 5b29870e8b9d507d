"""The portal's extended query tags page: tags with their status and errors, operations with
their progress, an errors page per tag; for DICOM Data Readers and Owners only."""

from __future__ import annotations

import time
from collections.abc import Callable

from pydicom.uid import generate_uid

from dicomite.bootstrap import Context
from dicomite.dicom.index.schema import Level
from dicomite.dicom.index.tag_entries import TagEntry
from dicomite.dicom.operations import bulk_update, bulk_update_request, export, records, reindex
from dicomite.dicom.operations.export_request import ExportRequest
from tests.portal.conftest import PortalClient
from tests.portal.test_dicom_pages import ct, store

Clients = Callable[[str], PortalClient]
TAGS = "/portal/dicom/tags"


def _reindexed(context: Context, *entries: TagEntry) -> str:
    return _finished(context, reindex.start(context.store, entries, "https://testserver/dicom/v2"))


def _finished(context: Context, operation_id: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with context.store.transaction() as db:
            found = records.get(db, operation_id)
        if found is not None and not found.running:
            return operation_id
        time.sleep(0.05)
    raise AssertionError("the operation did not finish")


def test_tags_operations_and_errors(signed_in: Clients, portal_context: Context) -> None:
    owner = signed_in("owner")
    empty = owner.get(TAGS)
    assert empty.status_code == 200 and "No extended query tags." in empty.text
    assert "No operations yet." in empty.text
    store(owner, ct(PatientAge="12"), ct(PatientAge="033Y"))
    operation_id = _reindexed(portal_context, TagEntry("00101010", "AS", None, Level.STUDY))

    reader = signed_in("reader")
    page = reader.get(TAGS).text
    assert "<code>00101010</code>" in page and "PatientAge" in page and "Disabled" in page
    assert f"<code>{operation_id}</code>" in page and 'value="100"' in page
    assert "hx-trigger" not in page  # nothing runs: no polling
    errors = reader.get(f"{TAGS}/00101010/errors")
    assert errors.status_code == 200 and "Value length is not 4." in errors.text
    assert reader.get(f"{TAGS}/PatientWeight/errors").status_code == 404
    assert reader.get(f"{TAGS}/Nonsense/errors").status_code == 400


def test_exports_are_listed_with_what_they_exported(
    signed_in: Clients, portal_context: Context
) -> None:
    owner = signed_in("owner")
    store(owner, ct(), ct())
    wanted = ExportRequest(None, {"type": "folder", "path": "portal"})
    root = portal_context.settings.export_root
    operation_id = _finished(portal_context, export.start(portal_context.store, wanted, root))
    page = owner.get(TAGS).text
    assert f"<code>{operation_id}</code>" in page and "exported 2, skipped 0" in page


def test_updates_are_listed_with_what_they_updated(
    signed_in: Clients, portal_context: Context
) -> None:
    owner = signed_in("owner")
    studies = [generate_uid(), generate_uid()]
    store(owner, *(ct(study) for study in studies))
    change = {"00100020": {"vr": "LO", "Value": ["P-2"]}}
    wanted = bulk_update_request.parse({"studyInstanceUids": studies, "changeDataset": change})
    started = bulk_update.start(portal_context.store, wanted, "https://testserver/dicom/v2")
    operation_id = _finished(portal_context, started)
    page = owner.get(TAGS).text
    assert f"<code>{operation_id}</code>" in page and "<td>update</td>" in page
    assert "studies updated 2, failed 0; instances updated 2" in page


def test_people_without_a_dicom_role_get_403(signed_in: Clients) -> None:
    nobody = signed_in("nobody")
    assert nobody.get(TAGS).status_code == 403
    assert 'href="/portal/dicom/tags"' not in nobody.get("/portal/").text
