"""The files of pydicom's test data that the fast header reader may leave to pydicom, each with
its reason (a pattern of the ``Unsupported`` message), and those it refuses although pydicom
reads them. Every other file there must be read by it exactly as pydicom reads it."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    why: str
    pattern: str  # in the message of header.Unsupported


def _syntax(uid: str) -> str:
    return re.escape(f"transfer syntax '{uid}'") + "$"


IMPLICIT = Reason(
    "Implicit VR Little Endian: VRs from the dictionary", _syntax("1.2.840.10008.1.2")
)
BIG_ENDIAN = Reason("Explicit VR Big Endian (retired, PS3.5 §A.3)", _syntax("1.2.840.10008.1.2.2"))
DEFLATED = Reason(
    "Deflated: STOW inflates it, then reads it here", _syntax("1.2.840.10008.1.2.1.99")
)
NO_SYNTAX = Reason("File Meta Information without a transfer syntax", "transfer syntax None")
NOT_PART10 = Reason("no Part 10 prefix: not DICOM, or no File Meta Information", "no DICM prefix")
UNKNOWN_VR = Reason("an element with a VR the standard does not define", "unknown VR")
UN_UNDEFINED = Reason(
    "a UN value of undefined length (an implicit VR sequence)", "undefined length UN"
)

_BY_REASON = {
    IMPLICIT: [
        "MR_small_implicit.dcm",
        "SC_rgb_jpeg_dcmd.dcm",
        "dicomdirtests/DICOMDIR-implicit",
        "empty_charset_LEI.dcm",
        "nested_priv_SQ.dcm",
        "no_meta_group_length.dcm",
        "priv_SQ.dcm",
        "rtdose.dcm",
        "rtdose_1frame.dcm",
        "rtplan.dcm",
        "rtplan_truncated.dcm",
    ],
    BIG_ENDIAN: [
        "ExplVR_BigEnd.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "SC_rgb_small_odd_big_endian.dcm",
        "dicomdirtests/DICOMDIR-bigEnd",
        "liver_expb_1frame.dcm",
        "rtdose_expb.dcm",
        "rtdose_expb_1frame.dcm",
    ],
    DEFLATED: ["image_dfl.dcm"],
    NO_SYNTAX: ["meta_missing_tsyntax.dcm"],
    NOT_PART10: [
        "ExplVR_BigEndNoMeta.dcm",
        "ExplVR_LitEndNoMeta.dcm",
        "README.txt",
        "crayons.icc",
        "dicomdirtests/README.txt",
        "dicomdirtests/TINY_ALPHA/README",
        "no_meta.dcm",
        "rtplan.dump",
        "rtstruct.dcm",
        "rtstruct.dump",
        "test1.json",
        "test_PN.json",
        "zipMR.gz",
    ],
    UNKNOWN_VR: ["SC_rgb_jpeg.dcm"],
    UN_UNDEFINED: ["UN_sequence.dcm"],
}

# name under pydicom/data -> why the fast reader declines it
DECLINED: dict[str, Reason] = {
    **{f"test_files/{name}": reason for reason, names in _BY_REASON.items() for name in names},
    "charset_files/FileInfo.txt": NOT_PART10,
}
# name -> why the fast reader refuses what pydicom reads
REFUSED = {
    # The last directory record item declares 248 bytes, 224 follow (PS3.5 §7.5): pydicom reads
    # what there is; a file cut short is refused (header.Unreadable). A DICOMDIR is no instance.
    "test_files/dicomdirtests/DICOMDIR-nooffset": "an item reaching past the end of the file",
}
