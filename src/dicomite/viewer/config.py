"""The viewer's ``app-config.js``, generated for this server: OHIF's ``window.config`` (see
OHIF's platform/app/public/config/*.js and its configuration docs for the keys).

- ``routerBasename`` ``/viewer``: OHIF's routes (study list, ``/viewer/viewer?StudyInstanceUIDs=``,
  the sign-in ``/viewer/callback``) live under /viewer/, while the build loads its files from
  the site root.
- One DICOMweb data source, this server's ``/dicom/v2``, on the same origin as the viewer (no
  CORS needed). Frames are fetched with WADO-RS (``wadors``) as stored (``transfer-syntax=*``)
  and decoded in the browser; the Accept parameter ``type`` unquoted, as OHIF sends it by
  default and Dicomite accepts. Study search uses wildcards (OHIF puts ``*`` around what people
  type) and no fuzzy matching, which would turn the wildcards into word prefixes.
- ``oidc[0]`` with ``response_type`` ``code``: OHIF's oidc-client-ts client, authorization code
  with PKCE (S256), against this tenant's v2 authority, as the built-in "DICOM viewer" app
  (a public client: no secret), asking for the DICOM service's ``user_impersonation`` and a
  refresh token (``offline_access``) for silent renewal. ``redirect_uri`` is relative to
  ``routerBasename``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dicomite.identity.viewer_client import CALLBACK_PATH, viewer_app_id

VIEWER_PATH = "/viewer"
SIGNED_OUT_PATH = "/signed-out"
SOURCE_NAME = "dicomite"
DICOMWEB_SOURCE = "@ohif/extension-default.dataSourcesModule.dicomweb"


@dataclass(frozen=True)
class Deployment:
    """What the configuration says about the server it came from."""

    public_url: str
    tenant_id: str
    dicom_resource_uri: str
    partition: str | None = None  # the data partition shown, on deployments that have them

    @property
    def dicomweb_root(self) -> str:
        root = f"{self.public_url}/dicom/v2"
        return root if self.partition is None else f"{root}/partitions/{self.partition}"

    @property
    def authority(self) -> str:
        return f"{self.public_url}/{self.tenant_id}/v2.0"

    @property
    def scope(self) -> str:
        api = self.dicom_resource_uri.rstrip("/")
        return f"openid profile offline_access {api}/user_impersonation"


def viewer_config(deployment: Deployment) -> dict[str, Any]:
    return {
        "routerBasename": VIEWER_PATH,
        "showStudyList": True,
        "extensions": [],
        "modes": [],
        "customizationService": {},
        # The DICOM service is on the viewer's own origin.
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "maxNumberOfWebWorkers": 3,
        "defaultDataSourceName": SOURCE_NAME,
        "dataSources": [_dicomweb(deployment)],
        "oidc": [_sign_in(deployment)],
    }


def _dicomweb(deployment: Deployment) -> dict[str, Any]:
    root = deployment.dicomweb_root
    return {
        "namespace": DICOMWEB_SOURCE,
        "sourceName": SOURCE_NAME,
        "configuration": {
            "friendlyName": "Dicomite DICOM service",
            "name": SOURCE_NAME,
            "qidoRoot": root,
            "wadoRoot": root,
            "wadoUriRoot": root,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False,
            "supportsWildcard": True,
            "omitQuotationForMultipartRequest": True,
            # Study metadata leaves bulk data out rather than referring to it.
            "bulkDataURI": {"enabled": False},
        },
    }


def _sign_in(deployment: Deployment) -> dict[str, Any]:
    return {
        "authority": deployment.authority,
        "client_id": viewer_app_id(deployment.tenant_id),
        "redirect_uri": CALLBACK_PATH.removeprefix(VIEWER_PATH),
        "response_type": "code",
        "scope": deployment.scope,
        # OHIF routes its sign-out callback at this URI's path *with* routerBasename in front,
        # so OHIF's default ("/", i.e. /viewer/) would catch its own /viewer/viewer route and
        # rewrite every study link. This one is never reached, as it is not registered: after
        # sign-out Dicomite shows its own "Signed out" page.
        "post_logout_redirect_uri": SIGNED_OUT_PATH,
        "automaticSilentRenew": True,
        # Entra ID (and so Dicomite) publishes no revocation_endpoint; asked to revoke first,
        # oidc-client-ts would fail the sign-out before it leaves for the logout endpoint.
        "revokeAccessTokenOnSignout": False,
    }


def app_config_js(deployment: Deployment) -> bytes:
    """The script: data only (JSON is JavaScript), so nothing in it runs but the assignment."""
    config = json.dumps(viewer_config(deployment), indent=2)
    return f"window.config = {config};\n".encode()
