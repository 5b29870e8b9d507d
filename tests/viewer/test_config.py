"""The generated ``app-config.js``: OHIF routed under /viewer, reading this server's
DICOMweb v2 API and signing people in with code + PKCE as the built-in viewer app."""

from __future__ import annotations

import json
import uuid
from typing import Any

from dicomite.identity.viewer_client import callback_uri, viewer_app_id
from dicomite.viewer.config import Deployment, app_config_js

TENANT = str(uuid.uuid4())
DEPLOYMENT = Deployment("https://dicom.example.org:8443", TENANT, "https://dicom.example.org/")


def loaded(script: bytes) -> Any:
    text = script.decode()
    assert text.startswith("window.config = ") and text.endswith(";\n")
    return json.loads(text.removeprefix("window.config = ").removesuffix(";\n"))


def test_the_viewer_routes_under_viewer_and_reads_this_server() -> None:
    config = loaded(app_config_js(DEPLOYMENT))
    assert config["routerBasename"] == "/viewer"
    [source] = config["dataSources"]
    assert source["sourceName"] == config["defaultDataSourceName"]
    assert source["namespace"] == "@ohif/extension-default.dataSourcesModule.dicomweb"
    settings = source["configuration"]
    root = "https://dicom.example.org:8443/dicom/v2"
    assert settings["qidoRoot"] == settings["wadoRoot"] == settings["wadoUriRoot"] == root
    assert settings["imageRendering"] == settings["thumbnailRendering"] == "wadors"
    assert settings["supportsWildcard"] and not settings["supportsFuzzyMatching"]


def test_sign_in_is_code_with_pkce_as_the_built_in_viewer_app() -> None:
    [oidc] = loaded(app_config_js(DEPLOYMENT))["oidc"]
    assert oidc["authority"] == f"https://dicom.example.org:8443/{TENANT}/v2.0"
    assert oidc["client_id"] == viewer_app_id(TENANT)
    assert oidc["response_type"] == "code"
    assert oidc["scope"] == (
        "openid profile offline_access https://dicom.example.org/user_impersonation"
    )
    # OHIF puts routerBasename in front: the registered callback
    base = "https://dicom.example.org:8443/viewer"
    assert base + oidc["redirect_uri"] == callback_uri("https://dicom.example.org:8443")


def test_the_sign_out_route_does_not_shadow_the_viewer_route() -> None:
    """OHIF routes the sign-out callback at /viewer + its path, not taking routerBasename off;
    at /viewer/ (OHIF's default "/") it matched the basic viewer's /viewer/viewer page."""
    [oidc] = loaded(app_config_js(DEPLOYMENT))["oidc"]
    routed_at = "/viewer" + oidc["post_logout_redirect_uri"]
    assert routed_at.rstrip("/") not in ("/viewer", "/viewer/callback")
    # there is no revocation endpoint to call first (OHIF's default would)
    assert oidc["revokeAccessTokenOnSignout"] is False


def test_the_script_holds_only_data() -> None:
    """Everything after the assignment is one JSON value: a quote in a setting stays in it."""
    hostile = Deployment('https://x.example/";alert(1);"', TENANT, "https://r.example")
    source = loaded(app_config_js(hostile))["dataSources"][0]
    assert source["configuration"]["qidoRoot"] == 'https://x.example/";alert(1);"/dicom/v2'
