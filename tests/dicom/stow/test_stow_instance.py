"""The fast header reader (``model.header`` + ``model.rawjson``) against pydicom, its oracle: for
the same bytes, ``stow_instance.from_header`` must give what ``from_blob`` gives — byte-identical
metadata, the same identifiers, checks and frame count — or decline (``Unsupported``), and on
pydicom's own test files it declines only those listed in ``tests/dicom/header_declines.py``."""

from __future__ import annotations

import io
import logging
import struct
from pathlib import Path
from typing import Any

import pydicom.data
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydicom import dcmread

from dicomite.bootstrap import Context
from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.model import dicomjson, rawjson
from dicomite.dicom.model.header import LONG_VRS, Unreadable, Unsupported
from dicomite.dicom.stow import instance as stow_instance
from dicomite.dicom.stow import validation
from dicomite.dicom.stow.instance import Instance
from dicomite.dicom.stow.results import Reason, Result
from dicomite.dicom.stow.service import UNREADABLE, StowRequest, StowService
from dicomite.dicom.stow.upload import PartUpload
from tests.dicom.model.header_declines import DECLINED, REFUSED
from tests.dicom.stow.test_stow_service import started
from tests.fixtures.dicom import make_dataset, to_bytes
from tests.fixtures.loops import run_async

# What pydicom.data.get_testdata_files() and get_charset_files() find in the installed package
# (their first source; the rest are downloads, which a test must not start).
PYDICOM_DATA = Path(pydicom.data.__file__).parent
SAMPLES = sorted(
    path
    for folder in ("test_files", "charset_files")
    for path in (PYDICOM_DATA / folder).rglob("*")
    if path.is_file() and path.suffix != ".py"
)
EXPLICIT_LITTLE = b"1.2.840.10008.1.2.1"
MAX_INFLATED = 512 * 1024**2
UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
READ, DECLINES, REFUSES = "read", "declined", "refused"
REQUEST = StowRequest(1, None, False, "https://localhost/dicom/v1")


def _same(data: bytes, refused_but_read: bool = False) -> str:
    """What the fast reader does with ``data``: READ (and agrees with pydicom), DECLINES (STOW
    asks pydicom) or REFUSES (STOW refuses the part; pydicom fails too, unless
    ``refused_but_read``). Any other exception of the fast reader is a bug: the test fails."""
    try:
        reference: Instance | Exception = stow_instance.from_blob(
            io.BytesIO(data), len(data), MAX_INFLATED
        )
    except Exception as error:  # compared below
        reference = error
    try:
        fast: Instance | None = stow_instance.from_header(data, True, len(data))
    except Unsupported:
        return DECLINES
    except (Unreadable, *UNREADABLE):  # STOW refuses the part without asking pydicom
        fast = None
    if fast is None:
        pydicom_reads = isinstance(reference, Instance)
        assert pydicom_reads == refused_but_read, f"pydicom reads what was refused: {reference}"
        return REFUSES
    assert isinstance(reference, Instance), f"pydicom refuses what was read: {reference!r}"
    assert dicomjson.join(fast.fragments) == dicomjson.join(reference.fragments)
    assert _outcome(fast) == _outcome(reference)
    return READ


def _outcome(instance: Instance) -> tuple[Any, ...]:
    checked = validation.check(instance.values)
    return (
        [instance.uid(keyword) for keyword in UIDS],
        checked.errors,
        checked.warnings,
        checked.columns,
        instance.number_of_frames,
        instance.transfer_syntax_uid,
        instance.media_sop_class_uid,
        instance.sop_class_mismatch,
        instance.truncated,
    )


def _name(path: Path) -> str:
    return path.relative_to(PYDICOM_DATA).as_posix()


@pytest.mark.filterwarnings("ignore")  # pydicom warns about the odd values of its samples
@pytest.mark.parametrize("path", SAMPLES, ids=_name)
def test_pydicom_samples(path: Path) -> None:
    """Every file of pydicom's test data is read as pydicom reads it, unless listed."""
    data, name = path.read_bytes(), _name(path)
    verdict = _same(data, refused_but_read=name in REFUSED)
    if name in DECLINED:
        assert verdict == DECLINES, f"{name} is listed as declined but was {verdict}"
        with pytest.raises(Unsupported, match=DECLINED[name].pattern):
            stow_instance.from_header(data, True, len(data))
    elif name in REFUSED:
        assert verdict == REFUSES, f"{name} is listed as refused but was {verdict}"
    else:
        assert verdict == READ, f"the fast reader {verdict} {name}, which it should read"


def test_the_lists_name_existing_files() -> None:
    names = {_name(path) for path in SAMPLES}
    assert set(DECLINED) <= names and set(REFUSED) <= names


def test_stored_instances_are_read_without_pydicom() -> None:
    data = to_bytes(make_dataset(PatientName="Müller^Jürgen", StudyDescription="CT\\MR "))
    assert _same(data) == READ
    assert _same(data[:-10]) == READ  # pixel data cut short: truncated in both


# -------------------------------------------------------- STOW's path: declines logged, counted


def _stow_read(data: bytes) -> Instance:
    head = data[: stow_instance.HEAD_BYTES]
    return stow_instance.read(
        head, len(head) == len(data), len(data), lambda: io.BytesIO(data), MAX_INFLATED
    )


def _sample(name: str) -> bytes:
    return (PYDICOM_DATA / name).read_bytes()


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("path", SAMPLES, ids=_name)
def test_stow_reads_every_sample_as_pydicom_does(path: Path) -> None:
    """STOW's whole path (first bytes, declines, inflation) against pydicom alone."""
    data = path.read_bytes()
    if _name(path) in REFUSED:
        with pytest.raises(Unreadable):
            _stow_read(data)
        return
    try:
        reference = stow_instance.from_blob(io.BytesIO(data), len(data), MAX_INFLATED)
    except Exception:
        with pytest.raises((Unreadable, *UNREADABLE)):
            _stow_read(data)
        return
    instance = _stow_read(data)
    assert dicomjson.join(instance.fragments) == dicomjson.join(reference.fragments)
    assert _outcome(instance) == _outcome(reference)


@pytest.mark.filterwarnings("ignore")
def test_a_decline_is_logged_with_its_reason_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    data = _sample("test_files/MR_small_implicit.dcm")
    before = stow_instance.DECLINED.count
    with caplog.at_level(logging.INFO, logger="dicomite.dicom"):
        instance = _stow_read(data)
    assert stow_instance.DECLINED.count == before + 1
    declines = [r for r in caplog.records if r.name == "dicomite.dicom"]
    assert len(declines) == 1 and declines[0].levelno == logging.INFO
    assert "transfer syntax '1.2.840.10008.1.2'" in declines[0].getMessage()
    reference = stow_instance.from_blob(io.BytesIO(data), len(data), MAX_INFLATED)
    assert dicomjson.join(instance.fragments) == dicomjson.join(reference.fragments)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ["test_files/CT_small.dcm", "test_files/image_dfl.dcm"])
def test_read_and_inflated_instances_are_not_declines(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = _sample(name)
    before = stow_instance.DECLINED.count
    with caplog.at_level(logging.INFO, logger="dicomite.dicom"):
        instance = _stow_read(data)
    assert stow_instance.DECLINED.count == before
    assert not [r for r in caplog.records if r.name == "dicomite.dicom"]
    reference = stow_instance.from_blob(io.BytesIO(data), len(data), MAX_INFLATED)
    assert dicomjson.join(instance.fragments) == dicomjson.join(reference.fragments)
    assert _outcome(instance) == _outcome(reference)


class FastReaderBug(Exception):
    pass


def test_a_fast_reader_bug_is_not_hidden_by_pydicom(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_level: rawjson.Level) -> None:
        raise FastReaderBug

    monkeypatch.setattr(rawjson.Level, "fragments", broken)  # our own code, made to fail
    before = stow_instance.DECLINED.count
    with pytest.raises(FastReaderBug):
        _stow_read(_sample("test_files/CT_small.dcm"))
    assert stow_instance.DECLINED.count == before


# -------------------------------------------------------- generated Explicit VR LE files

_PIECES = [
    b"A",
    b"z",
    b"^",
    b"=",
    b"\\",
    b" ",
    b"\x00",
    b"0",
    b"7",
    b".",
    b"-",
    b"+",
    b"e",
    b"E",
    b"\xe9",
    b"\xc3\xa9",
    b"\x1b$B",
    b"\t",
    b'"',
    b"nan",
    b"12",
    b"1.5",
    b"\xff",
]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=8).map(b"".join)
_ELEMENTS = [
    (0x00080005, "CS"),
    (0x00080008, "CS"),
    (0x00080016, "UI"),
    (0x00080018, "UI"),
    (0x00080020, "DA"),
    (0x00080030, "TM"),
    (0x0008002A, "DT"),
    (0x00080054, "AE"),
    (0x00080060, "CS"),
    (0x00080090, "PN"),
    (0x00081030, "LO"),
    (0x00081090, "LO"),
    (0x00090010, "LO"),
    (0x00091001, "UN"),
    (0x00091002, "SH"),
    (0x00100010, "PN"),
    (0x00100020, "LO"),
    (0x00100020, "UN"),
    (0x00101010, "AS"),
    (0x00104000, "LT"),
    (0x0020000D, "UI"),
    (0x0020000E, "UI"),
    (0x00200013, "IS"),
    (0x00200032, "DS"),
    (0x00209161, "UI"),
    (0x00280008, "IS"),
    (0x00280010, "US"),
    (0x00280106, "SS"),
    (0x00181060, "DS"),
    (0x00186011, "SQ"),
    (0x00209165, "AT"),
    (0x00280009, "AT"),
    (0x00321060, "LO"),
    (0x00400254, "LO"),
    (0x0040A160, "UT"),
    (0x00081190, "UR"),
    (0x0018605A, "FL"),
    (0x00186028, "FD"),
    (0x00181063, "DS"),
    (0x00189219, "SS"),
    (0x00720076, "UL"),
    (0x00720078, "SL"),
    (0x0072007A, "SV"),
    (0x0072007C, "UV"),
    (0x00700084, "PN"),
    (0x00400275, "SQ"),
    (0x00080013, "TM"),
    (0x00082112, "SQ"),
    (0x7FE00010, "OW"),
    (0x00283006, "US"),
    (0x00189325, "OB"),
    (0x00020010, "UI"),
]
_CHARSETS = st.sampled_from(
    [
        None,
        None,
        None,
        None,
        b"ISO_IR 100",
        b"ISO_IR 192",
        b"ISO_IR 6",
        b"ISO_IR 100 ",
        b"",
        b"\x00A",
        b"ISO 2022 IR 87",
        b"\\ISO 2022 IR 100",
        b"ISO_IR 144",
    ]
)


def _value(vr: str) -> st.SearchStrategy[bytes]:
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "AT", "OB", "OW", "UN"):
        special = [
            struct.pack("<d", float("nan")),
            struct.pack("<f", float("inf")),
            struct.pack("<4H", 1, 2, 3, 4),
        ]
        return st.binary(max_size=20) | st.sampled_from(special)
    return _TEXT


def _element(tag: int, vr: str, value: bytes) -> bytes:
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode()
    if vr in LONG_VRS:
        return head + struct.pack("<HL", 0, len(value)) + value
    return head + struct.pack("<H", len(value)) + value


@st.composite
def _dataset(draw: st.DrawFn, depth: int = 0) -> bytes:
    chosen = draw(st.lists(st.sampled_from(_ELEMENTS), max_size=10))
    if not draw(st.booleans()):
        chosen.sort()
    out = b""
    charset = draw(_CHARSETS)
    if charset is not None:
        out += _element(0x00080005, "CS", charset)
    for tag, vr in chosen:
        if vr == "SQ":
            if depth >= 2:
                continue
            items = draw(st.lists(_dataset(depth + 1), max_size=2))
            undefined = draw(st.booleans())
            body = b"".join(
                struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
                + i
                + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
                if undefined
                else struct.pack("<HHL", 0xFFFE, 0xE000, len(i)) + i
                for i in items
            )
            if draw(st.booleans()):  # a sequence of undefined length
                out += struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, b"SQ", 0, 0xFFFFFFFF)
                out += body + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
            else:
                out += _element(tag, "SQ", body)
        elif tag >> 16 != 2 or depth:
            out += _element(tag, vr, draw(_value(vr)))
    return out


def _file(dataset: bytes, syntax: bytes = EXPLICIT_LITTLE) -> bytes:
    meta = _element(0x00020002, "UI", b"1.2.840.10008.5.1.4.1.1.2\x00")
    meta += _element(0x00020010, "UI", syntax + b"\x00" * (len(syntax) % 2))
    group = _element(0x00020000, "UL", struct.pack("<L", len(meta)))
    return bytes(128) + b"DICM" + group + meta + dataset


@pytest.mark.filterwarnings("ignore")  # pydicom warns about the odd values it reads
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dataset=_dataset(), cut=st.integers(0, 40))
@example(  # a sequence given twice: pydicom reads the first one's items (and refuses this one)
    dataset=b"@\x00u\x02SQ\x00\x00\xff\xff\xff\xff\xfe\xff\x00\xe0\n\x00\x00\x00\x08\x00\x05\x00CS"
    b"\x02\x00\x00A\xfe\xff\xdd\xe0\x00\x00\x00\x00@\x00u\x02SQ\x00\x00\x00\x00\x00\x00",
    cut=0,
)
@example(  # a US value of odd length: pydicom refuses it (BytesLengthException), STOW too
    dataset=b"(\x00\x10\x00US\t\x00" + bytes(9),
    cut=0,
)
@example(  # a character set pydicom's reader refuses (ValueError): refused by both
    dataset=b"\x08\x00\x05\x00CS\x02\x00\x00A",
    cut=0,
)
def test_generated_files(dataset: bytes, cut: int) -> None:
    data = _file(dataset + _element(0x7FE00010, "OW", bytes(16)))
    _same(data)
    _same(data[: len(data) - cut])


# ------------------------------------------------------------- in StowService, on a real blob


def _commit(context: Context, tmp_path: Path, data: bytes) -> tuple[StowService, Result]:
    blobs = FileSystemBlobStore(tmp_path / "blobs")
    service = StowService(context.store, blobs, 1024**3)
    upload = PartUpload(blobs, 1024**3)
    run_async(upload.write, data)
    return service, service.commit_part(started(service, REQUEST), upload, object()).result


@pytest.mark.filterwarnings("ignore")
def test_the_stow_service_counts_what_pydicom_reads(context: Context, tmp_path: Path) -> None:
    data = to_bytes(make_dataset())
    service, result = _commit(context, tmp_path, data)
    before = service.headers_declined
    implicit = _sample("test_files/MR_small_implicit.dcm")
    _, implicit_result = _commit(context, tmp_path, implicit)
    assert result.failure is None and implicit_result.failure is None
    assert implicit_result.sop_uid == dcmread(io.BytesIO(implicit)).SOPInstanceUID
    assert service.headers_declined == before + 1


@pytest.mark.filterwarnings("ignore")
def test_a_value_of_the_wrong_length_is_a_processing_failure(
    context: Context, tmp_path: Path
) -> None:
    """pydicom refuses a US value of odd length (BytesLengthException): the part fails with
    272, and the request goes on (it used to escape as an unexpected error)."""
    data = to_bytes(make_dataset(SmallestImagePixelValue=0))
    even = b"\x28\x00\x06\x01US\x02\x00\x00\x00"
    assert data.count(even) == 1
    _, result = _commit(
        context, tmp_path, data.replace(even, b"\x28\x00\x06\x01US\x03\x00" + bytes(3))
    )
    assert result.failure == Reason.PROCESSING_FAILURE
