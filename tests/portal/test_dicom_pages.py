"""DICOM studies in the portal: upload through the dropzone's route, list and search, a study
with its series and thumbnails, an instance with frames and window presets, delete, and who may
do which (DICOM Data Reader / Owner / neither)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydicom.uid import generate_uid

from tests.fixtures.dicom import make_dataset, to_bytes
from tests.portal.conftest import PortalClient

Clients = Callable[[str], PortalClient]
STUDIES = "/portal/dicom/studies"
# "=" separates PN component groups, so the name's payload has none; the description's has.
XSS_NAME = '<script>alert("pn")</script>^<b>John</b>'
XSS_TEXT = "<img src=x onerror=alert(1)>"

IMAGE_SRC = re.compile(r'<img (?:class="thumbnail" )?src="([^"]+)"')


def upload(client: PortalClient, body: bytes, content_type: str = "application/dicom") -> Any:
    headers = {"Content-Type": content_type, "X-CSRF-Token": client.csrf(STUDIES)}
    return client.post("/portal/dicom/upload", content=body, headers=headers)


def ct(study: str | None = None, frames: int = 1, **attributes: Any) -> bytes:
    """A small CT instance whose values span air to bone (-1024 … 1976 HU and more), so that
    window presets give different pictures."""
    dataset = make_dataset(study, frames=frames, **attributes)
    dataset.RescaleIntercept, dataset.RescaleSlope = -1024, 1
    ramp = np.linspace(0, 3000, 16)
    frames_pixels = [ramp + 300 * n for n in range(frames)]  # each frame its own picture
    dataset.PixelData = np.concatenate(frames_pixels).astype(np.uint16).tobytes()
    return to_bytes(dataset)


def store(client: PortalClient, *instances: bytes) -> None:
    for body in instances:
        response = upload(client, body)
        assert response.status_code == 200, response.text
        assert response.json() == {"stored": True, "message": "Stored.", "reason": None}


def rows(page: str) -> list[str]:
    return re.findall(r"<tr>\s*<td>.*?</tr>", page, re.S)


@pytest.fixture
def owner(signed_in: Clients) -> PortalClient:
    return signed_in("owner")


def test_owner_uploads_and_the_list_shows_the_study(owner: PortalClient) -> None:
    page = owner.get(STUDIES).text
    assert "No studies yet. Upload DICOM files" in page
    zone = re.search(r'<section class="dropzone" data-endpoint="([^"]+)" data-csrf="([^"]+)"', page)
    assert zone and zone.group(1) == "/portal/dicom/upload"
    assert zone.group(2) == owner.csrf(STUDIES)
    assert 'hx-trigger="dicom-uploaded from:document"' in page

    study, described = generate_uid(), {"StudyDescription": "Chest CT", "AccessionNumber": "ACC-7"}
    store(
        owner, ct(study, **described), ct(study, Modality="SR", **described), ct(study, **described)
    )

    [row] = rows(owner.get(STUDIES).text)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td.*?</td>", row, re.S)]
    assert cells == ["Doe, John", "PID-1", "2024-01-15", "CT, SR", "Chest CT", "ACC-7", "3", "3"]
    assert f'href="{STUDIES}/{study}"' in row


def test_upload_refusals_say_why(owner: PortalClient) -> None:
    body = ct()
    store(owner, body)
    duplicate = upload(owner, body)
    assert duplicate.status_code == 409
    assert duplicate.json() == {
        "stored": False,
        "message": "This instance is already stored.",
        "reason": 45070,
    }

    for garbage in (b"this is not DICOM at all", b"", bytes(132) + b"\xff" * 40):
        refused = upload(owner, garbage)
        assert refused.status_code == 409, garbage
        message = refused.json()["message"]
        assert message.startswith("The file is not a DICOM instance that could be read. "), message
        assert "cannot be read as a DICOM file" in message  # STOW's own ErrorComment follows

    invalid = upload(owner, ct(PatientID=None))
    assert invalid.status_code == 409
    assert invalid.json()["message"].startswith("The instance failed validation. DICOM100:")
    assert "(0010,0020) - required attribute is missing" in invalid.json()["message"]

    # Each of the instance's failures is shown, from STOW's result of the one part.
    twice = upload(owner, ct(PatientID=None, SeriesInstanceUID="1..2"))
    assert twice.status_code == 409
    assert twice.json() == {
        "stored": False,
        "message": "The instance failed validation. "
        'DICOM100: (0020,000e) - "1..2" is not a valid UID; '
        "DICOM100: (0010,0020) - required attribute is missing",
        "reason": 43264,
    }

    form = upload(owner, b"--x--", "multipart/form-data; boundary=x")
    assert form.status_code == 415
    assert "application/dicom" in form.json()["message"]


def test_invalid_searchable_attributes_are_stored_with_a_warning(owner: PortalClient) -> None:
    response = upload(owner, ct(StudyDate="2024-01-15"))
    assert response.status_code == 202
    answer = response.json()
    assert answer["stored"] is True and answer["reason"] == 1
    assert "does not validate VR DA" in answer["message"]


def test_upload_needs_the_csrf_header(owner: PortalClient) -> None:
    response = owner.post(
        "/portal/dicom/upload", content=ct(), headers={"Content-Type": "application/dicom"}
    )
    assert response.status_code == 403
    assert "No studies yet" in owner.get(STUDIES).text


def test_search_by_patient_date_modality_and_accession(owner: PortalClient) -> None:
    store(
        owner,
        ct(PatientName="Doe^John", PatientID="P-1", StudyDate="20240115", AccessionNumber="A1"),
        ct(PatientName="Smith^Anna", PatientID="P-2", StudyDate="20240301", Modality="MR"),
        ct(PatientName="Müller^Jörg", PatientID="P-3", StudyDate="20231224"),
    )

    def names(**query: str) -> list[str]:
        page = owner.get(STUDIES, params=query).text
        return sorted(re.findall(r'<td><a href="[^"]+">([^<]+)</a></td>', page))

    assert names() == ["Doe, John", "Müller, Jörg", "Smith, Anna"]
    assert names(patient_name="jo") == ["Doe, John", "Müller, Jörg"]  # fuzzy: any name part
    assert names(patient_name="doe jo") == ["Doe, John"]
    assert names(patient_name="muller") == ["Müller, Jörg"]  # accent-insensitive
    assert names(patient_id="P-2") == ["Smith, Anna"]
    assert names(patient_id="p-*") == ["Doe, John", "Müller, Jörg", "Smith, Anna"]
    assert names(date_from="2024-01-01") == ["Doe, John", "Smith, Anna"]
    assert names(date_from="2024-01-01", date_to="2024-01-31") == ["Doe, John"]
    assert names(date_to="2023-12-31") == ["Müller, Jörg"]
    assert names(modality="MR") == ["Smith, Anna"]
    assert names(accession="a1") == ["Doe, John"]

    assert names(patient_name="^") == names()  # no name part: no name filter
    nothing = owner.get(STUDIES, params={"patient_name": "nobody", "modality": "US"})
    assert "No studies match these filters." in nothing.text
    assert "<option selected>US</option>" in nothing.text
    assert 'value="nobody"' in nothing.text


def test_bad_search_input_is_a_message(owner: PortalClient) -> None:
    backwards = owner.get(STUDIES, params={"date_from": "2024-02-01", "date_to": "2024-01-01"})
    assert backwards.status_code == 400
    assert "Study date from must be on or before Study date to." in backwards.text
    malformed = owner.get(STUDIES, params={"date_to": "yesterday"})
    assert malformed.status_code == 400
    assert "Study date to must be a date (YYYY-MM-DD)." in malformed.text


def test_paging(owner: PortalClient) -> None:
    store(owner, *(ct(PatientID=f"P-{n:02}") for n in range(12)))
    first = owner.get(STUDIES, params={"limit": "10"}).text
    assert len(rows(first)) == 10
    assert "Studies 1\N{EN DASH}10" in first and 'rel="prev"' not in first
    following = html.unescape(re.search(r'href="([^"]+)" rel="next"', first).group(1))  # type: ignore[union-attr]
    assert following == f"{STUDIES}?limit=10&offset=10"
    second = owner.get(following).text
    assert len(rows(second)) == 2
    assert "Studies 11\N{EN DASH}12" in second and 'rel="next"' not in second
    seen = re.findall(r"<td>(P-\d\d)</td>", first + second)
    assert sorted(seen) == [f"P-{n:02}" for n in range(12)]
    beyond = owner.get(STUDIES, params={"limit": "10", "offset": "40"}).text
    assert "No more studies." in beyond


def test_study_page_lists_series_with_working_thumbnails(owner: PortalClient) -> None:
    study, first_series = generate_uid(), generate_uid()
    store(
        owner,
        ct(study, SeriesInstanceUID=first_series, SeriesNumber=1, InstanceNumber=2),
        ct(study, SeriesInstanceUID=first_series, SeriesNumber=1, InstanceNumber=1),
        ct(study, SeriesNumber=2, SeriesDescription="Bone", StudyDescription="Knee"),
    )
    page = owner.get(f"{STUDIES}/{study}").text
    assert "<h1>Knee" in page and "Doe, John" in page and "Series (2)" in page
    assert page.index("Series 1") < page.index("Series 2: Bone")
    assert page.index("Instance 1") < page.index("Instance 2")
    images = IMAGE_SRC.findall(page)
    assert len(images) == 3
    for src in images:
        assert src.startswith(f"{STUDIES}/{study}/series/") and src.endswith("/thumbnail")
        image = owner.get(src)
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/jpeg"
        assert image.content[:2] == b"\xff\xd8"
        assert image.headers["cache-control"] == "private, max-age=3600"
        again = owner.get(src, headers={"If-None-Match": image.headers["etag"]})
        assert again.status_code == 304
    assert 'data-confirm="Delete this study with its 3 instance(s)?' in page


def test_instance_view_with_frames_and_window_presets(owner: PortalClient) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    store(
        owner,
        ct(
            study,
            frames=3,
            SeriesInstanceUID=series,
            SOPInstanceUID=sop,
            InstanceNumber=7,
            BodyPartExamined="CHEST",
        ),
    )
    view = f"{STUDIES}/{study}/series/{series}/instances/{sop}"
    page = owner.get(view).text
    assert "<h1>Instance 7" in page and "frame 1 of 3" in page
    for label, value in [
        ("Patient ID", "PID-1"),
        ("Body part examined", "CHEST"),
        ("SOP Class", "CT Image Storage"),
        ("Number of frames", "3"),
    ]:
        assert f"<dt>{label}</dt><dd>{value}</dd>" in page
    assert 'id="frame" name="frame" type="number" min="1" max="3" value="1"' in page
    assert f'href="{view}?frame=2" rel="next"' in page
    for preset in (
        "Default (from the file)",
        "Lung W1500/L-600",
        "Bone W2000/L300",
        "Soft tissue W400/L40",
        "Brain W80/L40",
    ):
        assert f">{preset}</a>" in page

    [default] = IMAGE_SRC.findall(page)
    assert default == f"{view}/rendered"
    pictures = {}
    for query in ("", "?window=lung", "?window=bone", "?frame=2&window=bone"):
        image = owner.get(f"{view}/rendered{query}")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.headers["cache-control"] == "private, max-age=3600"
        pictures[query] = image.content
    assert len(set(pictures.values())) == 4  # each window and frame is its own picture

    lung = owner.get(f"{view}?frame=3&window=lung").text
    assert "frame 3 of 3" in lung and 'aria-current="true">Lung W1500/L-600' in lung
    assert html.unescape(IMAGE_SRC.findall(lung)[0]) == f"{view}/rendered?frame=3&window=lung"
    assert f'href="{view}?frame=2&amp;window=lung" rel="prev"' in lung

    assert owner.get(f"{view}?frame=4").status_code == 404
    assert owner.get(f"{view}/rendered?frame=0").status_code == 400
    unknown = owner.get(f"{view}?window=sepia")
    assert unknown.status_code == 400 and "not a window preset" in unknown.text


def test_owner_deletes_a_study(owner: PortalClient) -> None:
    study = generate_uid()
    store(owner, ct(study), ct(study))
    deleted = owner.submit(f"{STUDIES}/{study}/delete")
    assert deleted.status_code == 200 and str(deleted.url).endswith(
        "/dicom/studies?notice=study-deleted"
    )
    assert "Study deleted." in deleted.text and "No studies yet" in deleted.text
    gone = owner.get(f"{STUDIES}/{study}")
    assert gone.status_code == 404 and "It may have been deleted." in gone.text
    assert owner.submit(f"{STUDIES}/{study}/delete").status_code == 404


def test_the_study_opens_in_the_viewer_for_readers_and_owners(
    owner: PortalClient, signed_in: Clients
) -> None:
    study = generate_uid()
    store(owner, ct(study))
    link = f'<a class="button primary" href="/viewer/viewer?StudyInstanceUIDs={study}">'
    for person in (owner, signed_in("reader")):
        page = person.get(f"{STUDIES}/{study}").text
        assert f"{link}Open in viewer</a>" in page


def test_reader_sees_but_cannot_change(owner: PortalClient, signed_in: Clients) -> None:
    study = generate_uid()
    store(owner, ct(study))
    reader = signed_in("reader")
    listing = reader.get(STUDIES).text
    assert len(rows(listing)) == 1 and "dropzone" not in listing
    page = reader.get(f"{STUDIES}/{study}")
    assert page.status_code == 200 and "Delete study" not in page.text
    assert reader.get(IMAGE_SRC.findall(page.text)[0]).status_code == 200

    refused = upload(reader, ct())
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        "Storing or deleting DICOM data needs the DICOM Data Owner role."
    )
    assert reader.submit(f"{STUDIES}/{study}/delete").status_code == 403
    assert owner.get(f"{STUDIES}/{study}").status_code == 200


def test_reader_empty_state_points_to_an_owner(signed_in: Clients) -> None:
    page = signed_in("reader").get(STUDIES).text
    assert "No studies yet. A DICOM Data Owner can upload DICOM files" in page


def test_people_without_a_dicom_role_get_403(owner: PortalClient, signed_in: Clients) -> None:
    study = generate_uid()
    store(owner, ct(study))
    thumbnail = IMAGE_SRC.findall(owner.get(f"{STUDIES}/{study}").text)[0]
    nobody = signed_in("nobody")
    assert 'href="/portal/dicom/studies"' not in nobody.get("/portal/").text  # no nav link
    for path in (STUDIES, f"{STUDIES}/{study}", thumbnail):
        response = nobody.get(path)
        assert response.status_code == 403
        assert "needs the DICOM Data Reader or DICOM Data Owner role" in response.text
    assert upload(nobody, ct()).status_code == 403
    assert nobody.submit(f"{STUDIES}/{study}/delete").status_code == 403


def test_signed_out_images_go_to_sign_in(portal_client: PortalClient) -> None:
    path = f"{STUDIES}/1.2.3/series/1.2.4/instances/1.2.5/thumbnail"
    response = portal_client.get(path, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/portal/signin")


def test_malformed_or_unknown_uids_are_404(owner: PortalClient) -> None:
    for path in (
        f"{STUDIES}/1..2",
        f"{STUDIES}/1.2.3",
        f"{STUDIES}/1.2/series/1.3/instances/x_y",
        f"{STUDIES}/1.2/series/1.3/instances/1.4/thumbnail",
    ):
        assert owner.get(path).status_code == 404, path


def test_dicom_values_are_escaped(owner: PortalClient) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    store(
        owner,
        ct(
            study,
            SeriesInstanceUID=series,
            SOPInstanceUID=sop,
            PatientName=XSS_NAME,
            StudyDescription=XSS_TEXT,
            SeriesDescription='"><svg onload=x>',
        ),
    )
    pages = [
        owner.get(STUDIES).text,
        owner.get(STUDIES, params={"patient_name": "<script>"}).text,
        owner.get(f"{STUDIES}/{study}").text,
        owner.get(f"{STUDIES}/{study}/series/{series}/instances/{sop}").text,
    ]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "<b>John" not in page and "<svg" not in page
    name = "&lt;script&gt;alert(&#34;pn&#34;)&lt;/script&gt;, &lt;b&gt;John&lt;/b&gt;"
    text = "&lt;img src=x onerror=alert(1)&gt;"
    assert name in pages[0] and text in pages[0]
    assert name in pages[2] and text in pages[2] and "&#34;&gt;&lt;svg onload=x&gt;" in pages[2]
    assert name in pages[3] and text in pages[3]
