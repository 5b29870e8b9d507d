"""Values of extended query tags: checked, stored and matched per VR (Azure's table)."""

from __future__ import annotations

import re

import pytest

from dicomite.dicom.errors import BadRequest
from dicomite.dicom.index.tag_values import InvalidValue, conditions, stored


def _stored(vr: str, *values: object) -> tuple[object, ...]:
    found = stored("00000000", vr, {"vr": vr, "Value": list(values)})
    assert found is not None
    return found.text_value, found.words, found.number_value


def test_each_kind_is_stored_as_it_is_matched() -> None:
    assert _stored("LO", "Head CT", "ignored") == ("head ct", None, None)  # the first value
    assert _stored("PN", {"Alphabetic": "Doe^Jöhn"}) == ("doe^john", " doe john", None)
    assert _stored("DT", "2021100616")[0] == "20211006160000.000000"
    assert _stored("TM", "1640.5")[0] == "164000.500000"
    assert _stored("FL", 1.100000023841858)[2] == 1.100000023841858
    assert _stored("US", 65535)[2] == 65535.0
    assert stored("00000000", "LO", {"vr": "LO"}) is None  # nothing to index
    assert stored("00000000", "LO", None) is None


@pytest.mark.parametrize(
    ("vr", "value", "message"),
    [
        ("AS", "12", "Value length is not 4."),
        ("SH", "x" * 17, "Value length exceeds maximum length of 16."),
        ("CS", "lower", "Value contains invalid character."),
        ("DA", "20210230", "Value cannot be parsed as a valid date."),
        ("TM", "2500", "Value cannot be parsed as a valid Time."),
        ("US", 70000, "Value is out of the range of VR US."),
        ("UI", "1.2.abc", "Value is not a valid UID (PS3.5 §9.1)."),
        ("PN", {"Alphabetic": "a=b=c=d"}, "Value contains more than 3 groups."),
    ],
)
def test_values_that_cannot_be_indexed(vr: str, value: object, message: str) -> None:
    with pytest.raises(InvalidValue, match=re.escape(message)):
        stored("00000000", vr, {"vr": vr, "Value": [value]})


def test_an_element_of_another_vr_is_an_error() -> None:
    with pytest.raises(InvalidValue, match="expected to have VR 'SS' but has 'US'"):
        stored("00091001", "SS", {"vr": "US", "Value": [1]})


def test_query_conditions() -> None:
    assert conditions("X", "LO", "Head CT", False) == [("=", "text_value", "head ct")]
    assert conditions("X", "DA", "20200101-", False) == [(">=", "text_value", "20200101")]
    assert conditions("X", "TM", "10-11", False) == [
        (">=", "text_value", "100000.000000"),
        ("<=", "text_value", "110000.000000"),
    ]
    assert conditions("X", "PN", "jo", True) == [("like", "words", "% jo%")]
    assert conditions("X", "FL", "1.1", False) == [("=", "number_value", 1.100000023841858)]
    for vr, value, message in (
        ("SS", "1.5", "is not a valid long value"),
        ("FD", "one", "is not a valid double value"),
        ("DA", "2020", "Date should be valid"),
        ("DT", "20200101+0100", "contains offset which is not supported"),
        ("DA", "20200102-20200101", "is invalid"),
    ):
        with pytest.raises(BadRequest, match=message):
            conditions("X", vr, value, False)
