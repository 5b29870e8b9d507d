"""The two permission kinds keep Graph's wire values (``resourceAccess.type``) and the portal's
and CLI's names for them."""

from __future__ import annotations

import json
import uuid

import pytest

from dicomite.identity.permission_kind import PermissionKind
from dicomite.identity.problems import InvalidInput
from dicomite.identity.validation import normalize_required_resource_access


def test_the_wire_values_are_graphs() -> None:
    assert json.dumps([PermissionKind.ROLE, PermissionKind.SCOPE]) == '["Role", "Scope"]'
    assert (PermissionKind.ROLE.label, PermissionKind.SCOPE.label) == ("Application", "Delegated")


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("application", PermissionKind.ROLE),
        ("Delegated", PermissionKind.SCOPE),
        ("Role", None),
        ("", None),
    ],
)
def test_a_form_or_option_names_a_kind_by_its_label(
    label: str, kind: PermissionKind | None
) -> None:
    assert PermissionKind.labelled(label) is kind


def _access(kind: object) -> list[dict[str, object]]:
    access = {"id": str(uuid.uuid4()), "type": kind}
    return [{"resourceAppId": str(uuid.uuid4()), "resourceAccess": [access]}]


def test_required_resource_access_stores_the_plain_wire_value() -> None:
    (entry,) = normalize_required_resource_access(_access("Scope"))
    assert type(entry["resourceAccess"][0]["type"]) is str


@pytest.mark.parametrize("kind", ["role", "Application", ["Role"], {"Role": 1}, None])
def test_any_other_type_is_refused_as_input(kind: object) -> None:
    with pytest.raises(InvalidInput, match="'Role' or 'Scope'"):
        normalize_required_resource_access(_access(kind))
