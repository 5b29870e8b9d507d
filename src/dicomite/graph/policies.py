"""``/policies/authorizationPolicy``: the tenant's user consent setting, in Graph's shape.

Entra ID says whether people may consent for themselves through the app consent policies
assigned to the default user role (``defaultUserRolePermissions.permissionGrantPoliciesAssigned``):
none means they may not; ``ManagePermissionGrantsForSelf.microsoft-user-default-legacy`` lets
them consent to any app for permissions that need no administrator, which is what Dicomite's
setting allows. Other policies (by verified publisher, by permission classification) are not
modelled and are refused. Policy ids are compared case-insensitively: Microsoft's examples
write ``managePermissionGrantsForSelf.…`` as well.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from dicomite.graph import body as b
from dicomite.graph import serialize
from dicomite.graph.auth import READ_AUTHORIZATION_POLICY, WRITE_AUTHORIZATION_POLICY
from dicomite.graph.endpoint import Call, Endpoints, Reply
from dicomite.graph.errors import InvalidRequest
from dicomite.identity.user_consent import set_users_can_consent, users_can_consent

PATH = "/policies/authorizationPolicy"
# Properties Graph lets a PATCH change that Dicomite does not model: accepted only empty.
_POLICY_PROPERTIES = [
    "allowInvitesFrom",
    "allowedToSignUpEmailBasedSubscriptions",
    "allowedToUseSSPR",
    "allowEmailVerifiedUsersToJoinOrganization",
    "allowUserConsentForRiskyApps",
    "blockMsolPowerShell",
    "description",
    "displayName",
    "guestUserRoleId",
    "id",
]
_ROLE_PROPERTIES = [
    "allowedToCreateApps",
    "allowedToCreateSecurityGroups",
    "allowedToCreateTenants",
    "allowedToReadBitlockerKeysForOwnedDevice",
    "allowedToReadOtherUsers",
]
_ASSIGNED = "permissionGrantPoliciesAssigned"


def routes(e: Endpoints) -> list[Route]:
    return [
        e.route("GET", PATH, READ_AUTHORIZATION_POLICY, get_policy, body=False),
        e.route("PATCH", PATH, WRITE_AUTHORIZATION_POLICY, update_policy, body=True),
    ]


def get_policy(call: Call) -> Reply:
    with call.read() as session:
        allowed = users_can_consent(session, call.tenant_id)
    return call.entity(
        "policies/authorizationPolicy/$entity", serialize.authorization_policy(allowed)
    )


def update_policy(call: Call) -> Reply:
    b.check_properties(
        call.body, "authorizationPolicy", ["defaultUserRolePermissions"], _POLICY_PROPERTIES
    )
    permissions = b.member(call.body, "defaultUserRolePermissions", "defaultUserRolePermissions")
    b.check_properties(permissions, "defaultUserRolePermissions", [_ASSIGNED], _ROLE_PROPERTIES)
    if _ASSIGNED in permissions:
        allowed = _users_may_consent(b.array(permissions, _ASSIGNED, str))
        with call.write() as session:
            set_users_can_consent(session, call.tenant_id, allowed)
    return Reply(204)


def _users_may_consent(assigned: list[Any]) -> bool:
    policies = {policy.lower() for policy in assigned}
    if policies <= {serialize.USER_CONSENT_POLICY.lower()}:
        return bool(policies)
    raise InvalidRequest(
        f"{_ASSIGNED} may be [] (people may not consent) or "
        f"['{serialize.USER_CONSENT_POLICY}'] (people may consent to permissions that need "
        "no administrator); Dicomite supports no other app consent policy."
    )
