"""QIDO-RS from the wire: levels, matching kinds, includefield, paging, 204 and 400."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import Connection

from dicomite.dicom.index import qido
from dicomite.dicom.index.schema import Level
from dicomite.store.compiled import select_rows
from tests.fixtures.dicom import make_dataset, multipart, stow_headers, to_bytes
from tests.fixtures.directory import Admin


def values(results: list[dict[str, Any]], tag: str) -> list[Any]:
    return [r[tag]["Value"][0] for r in results if tag in r]


@pytest.fixture(scope="module")
def patient(writer: httpx.Client) -> dict[str, str]:
    """A patient of this module's own: two studies, three series, five instances."""
    pid = f"Q-{uuid.uuid4().hex[:12]}"
    study_a, study_b = generate_uid(), generate_uid()
    series = [
        (study_a, generate_uid(), "CT"),
        (study_a, generate_uid(), "MR"),
        (study_b, generate_uid(), "CT"),
    ]
    parts = []
    for study, series_uid, modality in series:
        for _ in range(2 if modality == "CT" and study == study_a else 1):
            parts.append(
                to_bytes(
                    make_dataset(
                        study=study,
                        series=series_uid,
                        PatientID=pid,
                        Modality=modality,
                        SpecificCharacterSet="ISO_IR 192",
                        PatientName="Müller^Jöhn^Q" if study == study_a else "Smith^Anna",
                        StudyDate="20230105" if study == study_a else "20240301",
                        AccessionNumber="ACC" + study[-5:],
                    )
                )
            )
    response = writer.post("/studies", content=multipart(*parts), headers=stow_headers())
    assert response.status_code == 200
    return {"pid": pid, "a": study_a, "b": study_b, "mr": series[1][1]}


def search(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(path, params=params)
    assert response.status_code in (200, 204), response.text
    return response.json() if response.status_code == 200 else []


def test_study_search_defaults_and_computed(writer: httpx.Client, patient: dict[str, str]) -> None:
    found = search(writer, "/studies", PatientID=patient["pid"], includefield="all")
    assert sorted(values(found, "0020000D")) == sorted([patient["a"], patient["b"]])
    study_a = next(r for r in found if r["0020000D"]["Value"][0] == patient["a"])
    assert study_a["00201208"]["Value"] == [3]  # NumberOfStudyRelatedInstances
    assert study_a["00201206"]["Value"] == [2]  # NumberOfStudyRelatedSeries
    assert study_a["00080061"]["Value"] == ["CT", "MR"]  # ModalitiesInStudy
    default = search(writer, "/studies", PatientID=patient["pid"])
    assert "00201208" not in default[0] and "00201206" not in default[0]
    assert "00100020" in default[0] and "00080061" in default[0]


def test_a_study_search_returns_modalities_in_study_without_includefield(
    writer: httpx.Client,
) -> None:
    """OHIF's study list needs ModalitiesInStudy: each study's series' modalities, distinct
    and sorted, come without includefield."""
    pid, study = f"Q-{uuid.uuid4().hex[:12]}", generate_uid()
    parts = [
        to_bytes(make_dataset(study=study, PatientID=pid, Modality=modality))
        for modality in ("MR", "SR", "CT", "MR")  # one series each
    ]
    response = writer.post("/studies", content=multipart(*parts), headers=stow_headers())
    assert response.status_code == 200, response.text
    [found] = search(writer, "/studies", PatientID=pid)
    assert found["00080061"] == {"vr": "CS", "Value": ["CT", "MR", "SR"]}
    assert "00201208" not in found and "00201206" not in found  # counts only when asked for


def test_modalities_in_study_follow_the_series_as_they_change(
    writer: httpx.Client, writer_v2: httpx.Client
) -> None:
    """The study row keeps its series' modalities: a series replaced by a v2 PUT with another
    modality, and a series deleted, change them; deleting the last series leaves no study."""
    pid, study = f"Q-{uuid.uuid4().hex[:12]}", generate_uid()
    ct, mr = generate_uid(), generate_uid()
    first = make_dataset(study=study, series=ct, PatientID=pid, Modality="CT")
    parts = [to_bytes(first), to_bytes(make_dataset(study=study, series=mr, Modality="MR"))]
    assert writer.post("/studies", content=multipart(*parts), headers=stow_headers()).is_success

    def modalities() -> list[str]:
        [found] = search(writer, "/studies", StudyInstanceUID=study)
        return list(found["00080061"]["Value"])

    assert modalities() == ["CT", "MR"]
    first.Modality = "US"  # the same instance, stored again: its series is US now
    replaced = writer_v2.put("/studies", content=multipart(to_bytes(first)), headers=stow_headers())
    assert replaced.status_code == 200, replaced.text
    assert modalities() == ["MR", "US"]
    assert writer.delete(f"/studies/{study}/series/{mr}").status_code == 204
    assert modalities() == ["US"]
    assert writer.delete(f"/studies/{study}/series/{ct}").status_code == 204
    assert writer.get("/studies", params={"StudyInstanceUID": study}).status_code == 204


def test_a_study_page_reads_modalities_in_its_search_statement(
    admin: Admin, patient: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The modalities of a page's studies come with the search's own statement (no second
    query), and the counts take one more only when asked for."""
    ran: list[Any] = []

    def recorded(db: Connection, statement: Any, params: Any) -> Any:
        ran.append(statement)
        return select_rows(db, statement, params)

    monkeypatch.setattr(qido, "select_rows", recorded)
    scope = qido.Scope(Level.STUDY)
    for params, queries in (([], 1), ([("includefield", "all")], 2)):
        ran.clear()
        query = qido.parse([("PatientID", patient["pid"]), *params], scope)
        with admin.context.store.transaction() as db:
            found = qido.search(db, scope, query)
        assert len(found) == 2 and all("00080061" in result for result in found)
        assert len(ran) == queries, params


def test_date_range_uid_list_and_wildcard(writer: httpx.Client, patient: dict[str, str]) -> None:
    pid = patient["pid"]
    assert values(search(writer, "/studies", PatientID=pid, StudyDate="20240101-"), "0020000D") == [
        patient["b"]
    ]
    assert values(search(writer, "/studies", PatientID=pid, StudyDate="-20231231"), "0020000D") == [
        patient["a"]
    ]
    assert len(search(writer, "/studies", PatientID=pid, StudyDate="20230105")) == 1
    both = search(writer, "/studies", StudyInstanceUID=f"{patient['a']},{patient['b']}")
    assert len(both) == 2
    assert len(search(writer, "/studies", PatientID=pid[:6] + "*")) >= 2
    assert len(search(writer, "/studies", PatientID=pid[:-1] + "?")) == 2


def test_fuzzy_person_name(writer: httpx.Client, patient: dict[str, str]) -> None:
    pid = patient["pid"]
    for query in ("joh", "mul", "MÜLLER JOHN", "jo mu"):
        found = search(writer, "/studies", PatientID=pid, PatientName=query, fuzzymatching="true")
        assert values(found, "0020000D") == [patient["a"]], query
    assert not search(writer, "/studies", PatientID=pid, PatientName="ohn", fuzzymatching="true")
    # A name without parts matches nothing fuzzily; it is compared as given instead.
    assert not search(writer, "/studies", PatientID=pid, PatientName="^", fuzzymatching="true")
    exact = search(writer, "/studies", PatientID=pid, PatientName="muller^john^q")
    assert values(exact, "0020000D") == [patient["a"]]


def test_series_and_instances_levels(writer: httpx.Client, patient: dict[str, str]) -> None:
    series = search(
        writer, f"/studies/{patient['a']}/series", includefield="NumberOfSeriesRelatedInstances"
    )
    assert sorted(values(series, "00080060")) == ["CT", "MR"]
    assert sorted(values(series, "00201209")) == [1, 2]
    assert values(
        search(writer, "/series", PatientID=patient["pid"], Modality="MR"), "0020000E"
    ) == [patient["mr"]]
    instances = search(writer, "/instances", PatientID=patient["pid"])
    assert len(instances) == 4 and "00100020" in instances[0]  # study attributes included
    nested = search(writer, f"/studies/{patient['a']}/series/{patient['mr']}/instances")
    assert len(nested) == 1 and nested[0]["0020000D"]["Value"] == [patient["a"]]
    by_modality = search(writer, "/studies", PatientID=patient["pid"], ModalitiesInStudy="MR")
    assert values(by_modality, "0020000D") == [patient["a"]]


def test_modalities_in_study_matches_every_series_and_instance_of_such_a_study(
    writer: httpx.Client, patient: dict[str, str]
) -> None:
    """Below the study level ModalitiesInStudy is still the study's: a CT series of a study
    that also has an MR series matches MR."""
    pid = patient["pid"]
    series = search(writer, "/series", PatientID=pid, ModalitiesInStudy="MR")
    assert sorted(values(series, "00080060")) == ["CT", "MR"]
    assert set(values(series, "0020000D")) == {patient["a"]}
    instances = search(writer, "/instances", PatientID=pid, ModalitiesInStudy="MR")
    assert len(instances) == 3 and set(values(instances, "0020000D")) == {patient["a"]}
    both = search(writer, "/series", PatientID=pid, ModalitiesInStudy="CT")
    assert set(values(both, "0020000D")) == {patient["a"], patient["b"]}
    assert not search(writer, "/series", PatientID=pid, ModalitiesInStudy="US")


def test_paging_and_204(writer: httpx.Client, patient: dict[str, str]) -> None:
    pid = patient["pid"]
    first = search(writer, "/instances", PatientID=pid, limit=3)
    second = search(writer, "/instances", PatientID=pid, limit=3, offset=3)
    assert len(first) == 3 and len(second) == 1
    assert writer.get("/instances", params={"PatientID": pid, "offset": 10}).status_code == 204
    assert writer.get("/studies", params={"PatientID": "nobody-" + pid}).status_code == 204


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "x"},
        {"offset": "-1"},
        {"StudyDate": "-"},
        {"StudyDate": "2024-01-01"},
        {"NoSuchKeyword": "1"},
        {"SOPInstanceUID": "1.2"},  # not searchable at study level
        {"fuzzymatching": "maybe"},
        {"includefield": "NotAKeyword"},
        {"PatientID": "\x00"},  # no DICOM value holds a NUL (PostgreSQL's text cannot)
        {"PatientName": "a\x00", "fuzzymatching": "true"},
        {"AccessionNumber": "a\x00*"},
        {"StudyInstanceUID": "1.2\x00"},
    ],
)
def test_bad_parameters_are_400(writer: httpx.Client, params: dict[str, str]) -> None:
    response = writer.get("/studies", params=params)
    assert response.status_code == 400 and response.text


def test_unsupported_accept_is_406(writer: httpx.Client) -> None:
    assert writer.get("/studies", headers={"Accept": "application/xml"}).status_code == 406


def test_prefix_wildcards_find_exactly_the_names_they_start(writer: httpx.Client) -> None:
    """The literal prefix before ``*`` becomes an index range on SQLite; the edges must hold."""
    tag = uuid.uuid4().hex[:6]
    names = {
        f"Zed{tag}^Jo": True,
        f"Zed{tag}^Jonas": True,
        f"Zed{tag}^Jöe": True,
        f"Zed{tag}^Jp": False,
        f"Zed{tag}^J": False,
        f"Zed{tag}^Jn": False,
    }
    parts = [
        to_bytes(make_dataset(PatientName=name, SpecificCharacterSet="ISO_IR 192"))
        for name in names
    ]
    assert writer.post("/studies", content=multipart(*parts), headers=stow_headers()).is_success
    found = search(writer, "/studies", PatientName=f"ZED{tag}^JO*")
    got = sorted(r["00100010"]["Value"][0]["Alphabetic"] for r in found)
    assert got == sorted(name for name, wanted in names.items() if wanted)
    assert len(search(writer, "/studies", PatientName=f"zed{tag}^j?")) == 3  # Jo, Jp, Jn
