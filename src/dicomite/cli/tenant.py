"""``dicomite tenant …``: settings of the whole tenant, as the operator at the console sets them.

``user-consent``: whether people may consent for themselves to what applications ask of them
(the portal's Enterprise applications → Consent and permissions; Graph's authorizationPolicy).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from dicomite.cli.shared import AsJson, DatabaseUrl, DataDir, deployment, print_json, say
from dicomite.identity import user_consent

app = typer.Typer(help="Settings of the whole tenant.", no_args_is_help=True)


class UserConsent(StrEnum):
    allow = "allow"
    deny = "deny"


ALLOWED = "Users may consent to apps for permissions that need no administrator."
DENIED = "Users may not consent to apps: an administrator grants consent for everyone."


@app.command("user-consent")
def set_user_consent(
    setting: Annotated[
        UserConsent | None,
        typer.Argument(help="allow or deny; without it, the current setting is shown"),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Whether people may consent for themselves to permissions that need no administrator."""
    with deployment(data_dir, database_url) as context:
        if setting is not None:
            with context.store.write() as session:
                allowed = setting is UserConsent.allow
                user_consent.set_users_can_consent(session, context.tenant_id, allowed)
        with context.store.read() as session:
            allowed = user_consent.users_can_consent(session, context.tenant_id)
    if as_json:
        print_json({"userConsent": (UserConsent.allow if allowed else UserConsent.deny).value})
    else:
        say(ALLOWED if allowed else DENIED)
