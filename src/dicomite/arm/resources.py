"""What the resource-manager surface answers, in Azure Resource Manager's JSON shapes.

The deployment is one cloud with one tenant and one subscription standing for it. The
subscription holds no resources; it is what ``az login`` lists and keeps as the account.
"""

from __future__ import annotations

import uuid
from typing import Any

from dicomite.identity.builtin import ARM_AUDIENCES
from dicomite.store.tables import Tenant

CLOUD_NAME = "Dicomite"


def subscription_id(tenant_id: str) -> str:
    """The one subscription's id: the name-based UUID (RFC 9562 §5.5) of ``"subscription"`` in the
    tenant id's namespace, so every process, host and restart names it alike without storing it."""
    return str(uuid.uuid5(uuid.UUID(tenant_id), "subscription"))


def cloud_endpoints(public_url: str, tenant_id: str) -> dict[str, Any]:
    """``GET /metadata/endpoints``: one cloud, as a single-cloud ARM (Azure Stack Hub) answers;
    ``az cloud register --endpoint-resource-manager`` reads the login endpoint (the authority
    host), the audiences (the first is the resource ``az`` asks tokens for) and the resource
    manager from it. Endpoints of services Dicomite does not serve are left out."""
    return {
        "name": CLOUD_NAME,
        "portal": f"{public_url}/portal/",
        "authentication": {
            "loginEndpoint": public_url,
            "audiences": list(ARM_AUDIENCES[:2]),
            "tenant": tenant_id,
            "identityProvider": "AAD",
        },
        "resourceManager": f"{public_url}/",
        "suffixes": {},
    }


def subscription(tenant: Tenant) -> dict[str, Any]:
    """A subscription as ``GET /subscriptions`` (api-version 2022-12-01) lists it."""
    sid = subscription_id(tenant.id)
    return {
        "id": f"/subscriptions/{sid}",
        "subscriptionId": sid,
        "tenantId": tenant.id,
        "displayName": tenant.display_name,
        "state": "Enabled",
        "managedByTenants": [],
    }


def tenant_description(tenant: Tenant) -> dict[str, Any]:
    """A tenant as ``GET /tenants`` (api-version 2022-12-01) lists it."""
    return {
        "id": f"/tenants/{tenant.id}",
        "tenantId": tenant.id,
        "tenantCategory": "Home",
        "displayName": tenant.display_name,
        "defaultDomain": tenant.domain,
        "domains": [tenant.domain],
        "tenantType": "AAD",
    }
