"""DICOM data management: the extended query tags (status, query status, indexing errors) and
the long-running operations with their progress. Read-only, for DICOM Data Readers and Owners
(tags are changed through the API or ``dicomite dicom tags``); while an operation runs the page
refreshes itself (htmx polling, no inline script)."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.datadict import keyword_for_tag
from starlette.responses import Response
from starlette.routing import Route

from dicomite.dicom.index import extended_tags, tag_entries, tag_errors
from dicomite.dicom.index.extended_tags import QueryTag
from dicomite.dicom.index.tag_entries import LEVEL_NAMES
from dicomite.dicom.operations import records
from dicomite.portal.dicom_access import dicom_page
from dicomite.portal.web import Page, Portal

RECENT_OPERATIONS = 20
ERRORS_SHOWN = 200


def routes(portal: Portal) -> list[Route]:
    return [
        portal.route("/dicom/tags", tags_page),
        portal.route("/dicom/tags/{path}/errors", errors_page),
    ]


@dataclass(frozen=True)
class TagRow:
    path: str
    keyword: str
    vr: str
    level: str
    status: str
    query_status: str
    private_creator: str
    error_count: int

    @classmethod
    def of(cls, tag: QueryTag) -> TagRow:
        keyword = "" if tag.private_creator else keyword_for_tag(tag.tag)
        label = LEVEL_NAMES[tag.level].capitalize()
        status, query = tag.status.capitalize(), tag.query_status.capitalize()
        creator = tag.private_creator or ""
        return cls(tag.path, keyword, tag.vr, label, status, query, creator, tag.error_count)


@dicom_page
def tags_page(page: Page) -> Response:
    with page.read_connection() as db:
        tags = [TagRow.of(tag) for tag in extended_tags.list_tags(db)]
        operations = records.recent(db, RECENT_OPERATIONS)
    return page.render(
        "dicom_tags.html",
        title="Extended query tags",
        tags=tags,
        operations=operations,
        running=any(operation.running for operation in operations),
    )


@dicom_page
def errors_page(page: Page) -> Response:
    path = tag_entries.normal_path(page.params["path"])
    with page.read_connection() as db:
        tag = extended_tags.get_tag(db, path)
        errors = tag_errors.errors_of(db, tag.key, ERRORS_SHOWN, 0)
    return page.render(
        "dicom_tag_errors.html", title=f"Errors of {path}", tag=TagRow.of(tag), errors=errors
    )
