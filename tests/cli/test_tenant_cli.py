"""``dicomite tenant user-consent [allow|deny]``: the tenant's user consent setting."""

from __future__ import annotations

from dicomite.bootstrap import Context
from dicomite.store.tables import Tenant
from tests.cli.conftest import Cli


def stored(context: Context) -> bool:
    with context.store.read() as session:
        return session.get_one(Tenant, context.tenant_id).users_can_consent


def test_users_may_consent_until_the_operator_denies_it(cli: Cli, context: Context) -> None:
    assert cli.json("tenant", "user-consent") == {"userConsent": "allow"}
    assert "Users may consent" in cli.ok("tenant", "user-consent").stdout

    assert "Users may not consent" in cli.ok("tenant", "user-consent", "deny").stdout
    assert stored(context) is False
    assert cli.json("tenant", "user-consent") == {"userConsent": "deny"}

    assert cli.json("tenant", "user-consent", "allow") == {"userConsent": "allow"}
    assert stored(context) is True


def test_only_allow_or_deny(cli: Cli) -> None:
    assert "'maybe' is not one of" in cli.fails("tenant", "user-consent", "maybe", code=2)
