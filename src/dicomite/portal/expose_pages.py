"""Expose an API: the Application ID URI, the scopes (delegated permissions) and app roles
(application permissions) a custom API offers, and the access token version it asks for.

Forms are turned into Graph's shapes and handed to ``directory.update_application``, which
validates them; its message is shown above the form that was sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from dicomite.identity import directory
from dicomite.identity.problems import Conflict, InvalidInput, NotFound
from dicomite.portal.apps_pages import manageable_app
from dicomite.portal.web import Page, Portal
from dicomite.store.tables import Application

Item = dict[str, Any]
# requestedAccessTokenVersion: null and 1 give v1.0 tokens, 2 gives v2.0 tokens.
TOKEN_VERSIONS = {"": None, "1": 1, "2": 2}
MEMBER_TYPES = {
    "Application": "Applications",
    "User": "Users/Groups",
    "User,Application": "Both (Users/Groups + Applications)",
}


def _scope(page: Page, item: Item) -> Item:
    return {
        **item,
        "value": page.field("value"),
        "type": page.field("type"),
        "adminConsentDisplayName": page.field("admin_name") or None,
        "adminConsentDescription": page.field("admin_description") or None,
        "userConsentDisplayName": page.field("user_name") or None,
        "userConsentDescription": page.field("user_description") or None,
        "isEnabled": page.field("state") != "disabled",
    }


def _role(page: Page, item: Item) -> Item:
    return {
        **item,
        "displayName": page.field("display_name"),
        "allowedMemberTypes": page.field("member_types").split(","),
        "value": page.field("value"),
        "description": page.field("description") or None,
        "isEnabled": page.field("enabled") == "true",
    }


@dataclass(frozen=True)
class Kind:
    """Scopes and app roles are edited alike: a list attribute of the application."""

    attribute: str  # Application attribute = update_application keyword
    template: str
    noun: str
    read: Callable[[Page, Item], Item]
    blank: Item
    asks_for_uri: bool


KINDS = {
    "scopes": Kind(
        "oauth2_permission_scopes",
        "app_expose_scope.html",
        "scope",
        _scope,
        {"type": "Admin", "isEnabled": True},
        asks_for_uri=True,
    ),
    "roles": Kind(
        "app_roles",
        "app_expose_role.html",
        "app-role",
        _role,
        {"allowedMemberTypes": ["Application"], "isEnabled": True},
        asks_for_uri=False,
    ),
}


def routes(portal: Portal) -> list[Route]:
    base = "/apps/{app}/expose"
    return [
        portal.route(base, expose),
        portal.route(f"{base}/uri", uri_form),
        portal.route(f"{base}/uri", save_uri, methods=["POST"]),
        portal.route(f"{base}/token-version", save_token_version, methods=["POST"]),
        portal.route(f"{base}/{{kind}}/new", item_form),
        portal.route(f"{base}/{{kind}}/new", save_item, methods=["POST"]),
        portal.route(f"{base}/{{kind}}/{{item}}", item_form),
        portal.route(f"{base}/{{kind}}/{{item}}", save_item, methods=["POST"]),
        portal.route(f"{base}/{{kind}}/{{item}}/state", set_state, methods=["POST"]),
        portal.route(f"{base}/{{kind}}/{{item}}/delete", delete_item, methods=["POST"]),
    ]


def expose(page: Page) -> Response:
    with page.read() as session:
        app = manageable_app(page, session)
    return page.render(
        "app_expose.html",
        title=f"{app.display_name} | Expose an API",
        app=app,
        member_types=MEMBER_TYPES,
        token_version=_version_choice(app),
    )


def _version_choice(app: Application) -> str:
    version = app.requested_access_token_version
    return "" if version is None else str(version)


def _back(page: Page, notice: str) -> Response:
    return page.redirect(f"/apps/{page.params['app']}/expose", notice=notice)


# --- Application ID URI and token version -----------------------------------------------------


def uri_form(page: Page, error: str = "", status: int = 200, value: str = "") -> Response:
    with page.read() as session:
        app = manageable_app(page, session)
    current = app.identifier_uris[0] if app.identifier_uris else ""
    return page.render(
        "app_expose_uri.html",
        status,
        title=f"{app.display_name} | Application ID URI",
        app=app,
        error=error,
        value=value or current or directory.default_identifier_uri(app),
        editing=bool(current),
    )


def save_uri(page: Page) -> Response:
    """Sets the first identifier URI (the one the blade shows); any others are kept."""
    uri = page.field("identifier_uri")
    try:
        with page.write() as session:
            app = manageable_app(page, session)
            directory.update_application(
                session, app, identifier_uris=[uri, *app.identifier_uris[1:]]
            )
    except (InvalidInput, Conflict) as problem:
        return uri_form(page, str(problem), 400, uri)
    return _back(page, "api-updated")


def save_token_version(page: Page) -> Response:
    choice = page.field("requested_access_token_version")
    if choice not in TOKEN_VERSIONS:
        raise InvalidInput("Choose an access token version: 1 or 2.")
    with page.write() as session:
        app = manageable_app(page, session)
        directory.update_application(
            session, app, requested_access_token_version=TOKEN_VERSIONS[choice]
        )
    return _back(page, "api-updated")


# --- scopes and app roles ---------------------------------------------------------------------


def _kind(page: Page) -> Kind:
    kind = KINDS.get(page.params["kind"])
    if kind is None:
        raise NotFound("There is no such page.")
    return kind


def _items(app: Application, kind: Kind) -> list[Item]:
    return [dict(i) for i in getattr(app, kind.attribute)]


def _find(page: Page, app: Application, kind: Kind) -> Item:
    wanted = page.params.get("item")
    if wanted is None:
        return {**kind.blank, "id": str(uuid.uuid4())}
    found = next((i for i in _items(app, kind) if i["id"] == wanted), None)
    if found is None:
        raise NotFound(f"This application has no {kind.noun.replace('-', ' ')} '{wanted[:40]}'.")
    return found


def item_form(page: Page, error: str = "", status: int = 200, item: Item | None = None) -> Response:
    kind = _kind(page)
    with page.read() as session:
        app = manageable_app(page, session)
        shown = item or _find(page, app, kind)
    return page.render(
        kind.template,
        status,
        title=f"{app.display_name} | Expose an API",
        app=app,
        item=shown,
        error=error,
        member_types=MEMBER_TYPES,
        editing="item" in page.params,
        needs_uri=not app.identifier_uris,
        uri=page.field("identifier_uri") or directory.default_identifier_uri(app),
    )


def save_item(page: Page) -> Response:
    """Adds or replaces one scope or app role. A new scope on an API with no Application ID
    URI yet sets one in the same change, as the Azure portal asks for it first."""
    kind = _kind(page)
    item: Item | None = None
    try:
        with page.write() as session:
            app = manageable_app(page, session)
            item = kind.read(page, _find(page, app, kind))
            changes: dict[str, Any] = {kind.attribute: _put(_items(app, kind), item)}
            if kind.asks_for_uri and not app.identifier_uris:
                changes["identifier_uris"] = [page.field("identifier_uri")]
            directory.update_application(session, app, **changes)
    except (InvalidInput, Conflict) as problem:
        return item_form(page, str(problem), 400, item)
    return _back(page, f"{kind.noun}-saved")


def _put(items: list[Item], item: Item) -> list[Item]:
    """``item`` in place of the one with its id, else appended."""
    if any(i["id"] == item["id"] for i in items):
        return [item if i["id"] == item["id"] else i for i in items]
    return [*items, item]


def set_state(page: Page) -> Response:
    enabled = page.field("enabled") == "true"
    return _change_item(page, lambda item: {**item, "isEnabled": enabled}, "saved")


def delete_item(page: Page) -> Response:
    """The page offers Delete only for a disabled item, as Entra ID requires."""
    return _change_item(page, lambda item: None, "deleted")


def _change_item(page: Page, change: Callable[[Item], Item | None], outcome: str) -> Response:
    kind = _kind(page)
    with page.write() as session:
        app = manageable_app(page, session)
        wanted = _find(page, app, kind)["id"]
        changed = [change(i) if i["id"] == wanted else i for i in _items(app, kind)]
        changes: dict[str, Any] = {kind.attribute: [i for i in changed if i is not None]}
        directory.update_application(session, app, **changes)
    return _back(page, f"{kind.noun}-{outcome}")
