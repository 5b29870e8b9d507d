"""Who may do what: each rule of ``identity.policy`` for each role, and nothing when disabled."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from dicomite.identity import policy
from dicomite.identity.builtin import DICOM_APP_ID, GRAPH_APP_ID
from dicomite.identity.problems import NotAllowed
from dicomite.identity.users import DicomDataRole, DirectoryRole
from dicomite.store.tables import Application, ServicePrincipal, User

GA = DirectoryRole.GLOBAL_ADMINISTRATOR
APP_ADMIN = DirectoryRole.APPLICATION_ADMINISTRATOR
DEVELOPER = DirectoryRole.APPLICATION_DEVELOPER
DIRECTORY_ROLES = [GA, APP_ADMIN, DEVELOPER, None]


def person(role: str | None = None, dicom: str | None = None, *, enabled: bool = True) -> User:
    return User(
        id=str(uuid.uuid4()), directory_role=role, dicom_role=dicom, account_enabled=enabled
    )


def app_owned_by(owner: User | None) -> Application:
    return Application(id=str(uuid.uuid4()), owner_user_id=owner.id if owner else None)


def api(app_id: str) -> ServicePrincipal:
    return ServicePrincipal(id=str(uuid.uuid4()), app_id=app_id)


CUSTOM_API = api(str(uuid.uuid4()))


@pytest.mark.parametrize(
    ("role", "users", "register"),
    [(GA, True, True), (APP_ADMIN, False, True), (DEVELOPER, False, True), (None, False, False)],
)
def test_users_and_registrations(role: str | None, users: bool, register: bool) -> None:
    assert policy.can_manage_users(person(role)) is users
    assert policy.can_register_applications(person(role)) is register


@pytest.mark.parametrize(
    ("role", "own", "others"),
    [(GA, True, True), (APP_ADMIN, True, True), (DEVELOPER, True, False), (None, False, False)],
)
def test_managing_applications(role: str | None, own: bool, others: bool) -> None:
    user = person(role)

    assert policy.can_manage_application(user, app_owned_by(user)) is own
    assert policy.can_manage_application(user, app_owned_by(person(GA))) is others
    assert policy.can_manage_application(user, app_owned_by(None)) is others


@pytest.mark.parametrize(
    ("role", "graph", "others"),
    [(GA, True, True), (APP_ADMIN, False, True), (DEVELOPER, False, False), (None, False, False)],
)
def test_granting_consent(role: str | None, graph: bool, others: bool) -> None:
    user = person(role)

    assert policy.can_grant_consent(user, api(GRAPH_APP_ID)) is graph
    assert policy.can_grant_consent(user, api(DICOM_APP_ID)) is others
    assert policy.can_grant_consent(user, CUSTOM_API) is others


@pytest.mark.parametrize(
    ("dicom", "read", "write"),
    [(DicomDataRole.OWNER, True, True), (DicomDataRole.READER, True, False), (None, False, False)],
)
def test_dicom_data(dicom: str | None, read: bool, write: bool) -> None:
    user = person(GA, dicom)

    assert policy.can_read_dicom(user) is read
    assert policy.can_write_dicom(user) is write


def test_directory_roles_give_no_dicom_access() -> None:
    assert not policy.can_read_dicom(person(GA))


@pytest.mark.parametrize("role", DIRECTORY_ROLES)
def test_a_disabled_account_may_do_nothing(role: str | None) -> None:
    user = person(role, DicomDataRole.OWNER, enabled=False)
    checks: list[Callable[[], bool]] = [
        lambda: policy.can_manage_users(user),
        lambda: policy.can_register_applications(user),
        lambda: policy.can_manage_application(user, app_owned_by(user)),
        lambda: policy.can_grant_consent(user, CUSTOM_API),
        lambda: policy.can_read_dicom(user),
        lambda: policy.can_write_dicom(user),
    ]
    assert not any(check() for check in checks)


def test_an_unknown_stored_role_counts_as_none() -> None:
    user = person("Emperor", "DICOM Data Emperor")

    assert policy.directory_role(user) is None and policy.dicom_role(user) is None
    assert not policy.can_register_applications(user)


def test_require_raises_not_allowed_with_the_message() -> None:
    policy.require(True, "unused")
    with pytest.raises(NotAllowed, match=r"^No\.$"):
        policy.require(False, "No.")


def test_require_variants_explain_what_is_missing() -> None:
    developer, nobody = person(DEVELOPER), person()
    cases: list[tuple[Callable[[], None], str]] = [
        (lambda: policy.require_manage_users(developer), policy.MANAGE_USERS),
        (lambda: policy.require_register_applications(nobody), policy.REGISTER_APPLICATIONS),
        (
            lambda: policy.require_manage_application(developer, app_owned_by(None)),
            policy.MANAGE_APPLICATION,
        ),
        (lambda: policy.require_grant_consent(developer, CUSTOM_API), policy.GRANT_CONSENT),
        (
            lambda: policy.require_grant_consent(person(APP_ADMIN), api(GRAPH_APP_ID)),
            policy.GRANT_GRAPH_CONSENT,
        ),
        (lambda: policy.require_read_dicom(nobody), policy.READ_DICOM),
        (lambda: policy.require_write_dicom(person(None, "DICOM Data Reader")), policy.WRITE_DICOM),
    ]
    for call, message in cases:
        with pytest.raises(NotAllowed) as raised:
            call()
        assert raised.value.message == message
    assert "Ask a Global Administrator or an Application Administrator" in policy.GRANT_CONSENT


def test_require_variants_pass_when_allowed() -> None:
    admin = person(GA, DicomDataRole.OWNER)
    policy.require_manage_users(admin)
    policy.require_register_applications(admin)
    policy.require_manage_application(admin, app_owned_by(None))
    policy.require_grant_consent(admin, api(GRAPH_APP_ID))
    policy.require_read_dicom(admin)
    policy.require_write_dicom(admin)


# --- privileged applications (issue 13, item 4) ------------------------------------------------

WRITE_ALL, ASSIGN_ALL = "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"
BOOTSTRAP_ROLES = frozenset({WRITE_ALL, ASSIGN_ALL})


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        (person(GA), True),
        (person(GA, enabled=False), False),
        (person(APP_ADMIN), False),
        (person(DEVELOPER), False),
        (policy.ApiCaller(frozenset({WRITE_ALL})), False),
        (policy.ApiCaller(frozenset({ASSIGN_ALL})), False),
        (policy.ApiCaller(BOOTSTRAP_ROLES), True),
        (policy.OPERATOR, True),
    ],
)
def test_who_may_change_an_app_holding_graph_roles(actor: policy.Actor, allowed: bool) -> None:
    assert policy.may_change_access(actor, BOOTSTRAP_ROLES) is allowed


@pytest.mark.parametrize(
    "actor", [person(APP_ADMIN), person(DEVELOPER), policy.ApiCaller(frozenset())]
)
def test_apps_without_graph_roles_are_not_privileged(actor: policy.Actor) -> None:
    assert policy.may_change_access(actor, frozenset())


def test_read_write_includes_read() -> None:
    writer = policy.ApiCaller(frozenset({WRITE_ALL}))
    assert policy.may_change_access(writer, frozenset({"Application.Read.All"}))
    reader = policy.ApiCaller(frozenset({"Application.Read.All"}))
    assert not policy.may_change_access(reader, frozenset({WRITE_ALL}))
