"""Users (Global Administrators only): list with search, New user, and a user's page where roles
are changed, the password reset, sign-in blocked or allowed, and the account deleted.

Every rule (password policy, signing the person out, keeping one Global Administrator) lives in
``identity.users``; this module shows its messages.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from dicomite.identity import passwords, policy, users
from dicomite.identity.problems import DirectoryProblem, NotAllowed
from dicomite.identity.users import DicomDataRole, DirectoryRole
from dicomite.portal import notices
from dicomite.portal.web import Page, Portal
from dicomite.store.tables import User

DIRECTORY_ROLES = ["", *(role.value for role in DirectoryRole)]
DICOM_ROLES = ["", *(role.value for role in DicomDataRole)]
NEW_USER_FIELDS = (
    "user_principal_name",
    "display_name",
    "directory_role",
    "dicom_role",
    "password_choice",
)
Action = Callable[[Session, User], object]


def routes(portal: Portal) -> list[Route]:
    return [
        portal.route("/users", list_users),
        portal.route("/users/new", new_form),
        portal.route("/users/new", create, methods=["POST"]),
        portal.route("/users/{user}", detail),
        portal.route("/users/{user}/roles", change_roles, methods=["POST"]),
        portal.route("/users/{user}/password", reset_password, methods=["POST"]),
        portal.route("/users/{user}/enabled", set_enabled, methods=["POST"]),
        portal.route("/users/{user}/delete", delete, methods=["POST"]),
    ]


def list_users(page: Page) -> Response:
    policy.require_manage_users(page.user)
    search = page.query.get("search", "").strip()[:256]
    with page.read() as session:
        found = users.list_users(session, page.tenant_id, search or None)
    return page.render("users_list.html", title="Users", users=found, search=search)


def new_form(page: Page, error: str = "", status: int = 200) -> Response:
    policy.require_manage_users(page.user)
    return page.render(
        "users_new.html",
        status,
        title="New user",
        error=error,
        roles=DIRECTORY_ROLES,
        dicom_roles=DICOM_ROLES,
        form={n: page.field(n) for n in NEW_USER_FIELDS},
    )


def create(page: Page) -> Response:
    policy.require_manage_users(page.user)
    password, generated = _chosen_password(page)
    try:
        chosen = users.new_password(password)  # hashed before the transaction opens
        with page.write() as session:
            user = users.create_user(
                session,
                page.tenant_id,
                page.now,
                user_principal_name=page.field("user_principal_name"),
                display_name=page.field("display_name"),
                password=chosen,
                directory_role=page.field("directory_role") or None,
                dicom_role=page.field("dicom_role") or None,
            )
    except DirectoryProblem as problem:
        return new_form(page, problem.message, _status(problem))
    return _done(page, user, "user-created", generated)


def detail(page: Page) -> Response:
    policy.require_manage_users(page.user)
    with page.read() as session:
        user = _user(page, session)
    return _show(page, user)


def _show(
    page: Page,
    user: User,
    *,
    error: str = "",
    status: int = 200,
    generated: str = "",
    notice: str = "",
) -> Response:
    shown = {"notice": notices.text(notice)} if notice else {}
    return page.render(
        "users_detail.html",
        status,
        title=user.display_name,
        user=user,
        error=error,
        generated=generated,
        roles=DIRECTORY_ROLES,
        dicom_roles=DICOM_ROLES,
        **shown,
    )


def _done(page: Page, user: User, notice: str, generated: str) -> Response:
    """A generated password is shown once, on this response; anything else redirects."""
    if generated:
        return _show(page, user, generated=generated, notice=notice)
    return page.redirect(f"/users/{user.id}", notice=notice)


def change_roles(page: Page) -> Response:
    directory_role = page.field("directory_role") or None
    dicom_role = page.field("dicom_role") or None
    return _act(
        page, lambda s, u: users.set_roles(s, u, directory_role, dicom_role), "user-updated"
    )


def reset_password(page: Page) -> Response:
    policy.require_manage_users(page.user)
    password, generated = _chosen_password(page)
    try:
        chosen = users.new_password(password)  # hashed before the transaction opens
    except DirectoryProblem as problem:
        return _refused(page, problem)
    return _act(
        page,
        lambda s, u: users.reset_password(s, u, chosen, page.now),
        "password-reset",
        generated=generated,
    )


def set_enabled(page: Page) -> Response:
    enabled = page.field("enabled") == "true"
    notice = "user-enabled" if enabled else "user-disabled"
    return _act(page, lambda s, u: users.set_enabled(s, u, enabled), notice)


def delete(page: Page) -> Response:
    return _act(page, users.delete_user, "user-deleted", to="/users")


def _act(page: Page, action: Action, notice: str, *, generated: str = "", to: str = "") -> Response:
    """Run one change on the user in the path; a refusal re-renders their page with its reason."""
    policy.require_manage_users(page.user)
    try:
        with page.write() as session:
            user = _user(page, session)
            action(session, user)
    except DirectoryProblem as problem:
        return _refused(page, problem)
    return page.redirect(to, notice=notice) if to else _done(page, user, notice, generated)


def _user(page: Page, session: Session) -> User:
    return users.get_user(session, page.tenant_id, page.params["user"])


def _refused(page: Page, problem: DirectoryProblem) -> Response:
    with page.read() as session:
        user = _user(page, session)
    return _show(page, user, error=problem.message, status=_status(problem))


def _chosen_password(page: Page) -> tuple[str, str]:
    """(password, the same if generated else ""): a generated one is shown once, on the result.
    A typed password is taken as typed (``Page.field`` would strip its blanks)."""
    if page.field("password_choice") == "generate":
        password = passwords.generate_password()
        return password, password
    typed = page.form.get("password") if page.form is not None else None
    return (typed if isinstance(typed, str) else ""), ""


def _status(problem: DirectoryProblem) -> int:
    return 403 if isinstance(problem, NotAllowed) else 400
