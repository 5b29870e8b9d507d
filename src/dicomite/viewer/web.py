"""The viewer over HTTP: ``/viewer/`` (OHIF's pages: always its ``index.html``), the generated
``app-config.js``, and the OHIF build's files at the site root, by the names the build holds
and no others. The one Starlette adapter of the package.

Until a build is installed, ``/viewer/`` says how to install it.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from starlette.datastructures import URLPath
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from dicomite.blocking import run_blocking
from dicomite.bootstrap import Context
from dicomite.dicom.index import partitions
from dicomite.viewer.build import (
    CONFIG,
    INDEX,
    REVALIDATE,
    BuildFile,
    ViewerBuild,
    cache_control,
    load_build,
    media_type,
)
from dicomite.viewer.config import VIEWER_PATH, Deployment, app_config_js
from dicomite.viewer.package import OHIF_APP

LOOK_AGAIN_SECONDS = 2.0
_READ_METHODS = ("GET", "HEAD")
_NOSNIFF = {"X-Content-Type-Options": "nosniff"}
# OHIF's pages carry an inline script, so no script policy here; the page may still not be
# framed elsewhere, and the sign-in callback's code never leaves in a Referer.
_PAGE_HEADERS = {
    **_NOSNIFF,
    "Cache-Control": REVALIDATE,
    "Content-Security-Policy": "frame-ancestors 'self'",
    "Referrer-Policy": "no-referrer",
}


class InstalledBuild:
    """The installed OHIF build: looked for when the app is made (before it serves) and, while
    missing, again by /viewer/ pages (at most every few seconds, in the blocking pool), so that
    ``dicomite viewer install`` next to a running server needs no restart (browsers ask for
    the build's files only from pages /viewer/ served)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self.current = load_build(folder, OHIF_APP)
        self._next_look = time.monotonic() + LOOK_AGAIN_SECONDS

    async def build(self) -> ViewerBuild | None:
        if self.current is None and time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + LOOK_AGAIN_SECONDS
            self.current = await run_blocking(load_build, self._folder, OHIF_APP)
        return self.current


class BuildFiles(BaseRoute):
    """``/{name}`` for the names of the build's files, and no other path: GET and HEAD send
    the file, other methods are 405 as on any route; every other path stays unmatched, so
    routing answers it as before (404, or another route's 405)."""

    def __init__(self, installed: InstalledBuild) -> None:
        self._installed = installed

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        build = self._installed.current
        if scope["type"] != "http" or build is None or scope["path"][1:] not in build.files:
            return Match.NONE, {}
        return (Match.FULL if scope["method"] in _READ_METHODS else Match.PARTIAL), {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        build = self._installed.current
        if scope["method"] not in _READ_METHODS or build is None:  # matched partially
            raise HTTPException(status_code=405)
        name = scope["path"][1:]
        headers = {**_NOSNIFF, "Cache-Control": cache_control(name)}
        await _send(build.files[name], name, headers)(scope, receive, send)


def viewer_routes(context: Context) -> list[BaseRoute]:
    """The viewer's routes, after all others: the build's names never shadow a route."""
    installed = InstalledBuild(context.settings.effective_viewer_dir)
    settings = context.settings
    with context.store.transaction() as db:
        shown = partitions.DEFAULT_NAME if partitions.enabled(db) else None
    deployment = Deployment(
        settings.effective_public_url, context.tenant_id, settings.dicom_resource_uri, shown
    )
    script = app_config_js(deployment)

    async def app_config(_request: Request) -> Response:
        headers = {**_NOSNIFF, "Cache-Control": REVALIDATE}
        return Response(script, media_type="text/javascript; charset=utf-8", headers=headers)

    async def page(_request: Request) -> Response:
        build = await installed.build()
        if build is None:
            return HTMLResponse(not_installed_page(), 404, {"Cache-Control": "no-store"})
        return _send(build.index, INDEX, _PAGE_HEADERS)

    return [
        Route(VIEWER_PATH, _to_viewer),
        Route(f"/{CONFIG}", app_config),
        Route(f"{VIEWER_PATH}/{CONFIG}", app_config),
        Route(VIEWER_PATH + "/{page:path}", page),
        BuildFiles(installed),
    ]


def _send(file: BuildFile, name: str, headers: dict[str, str]) -> FileResponse:
    return FileResponse(
        file.path, headers=headers, media_type=media_type(name), stat_result=file.stat
    )


async def _to_viewer(request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{VIEWER_PATH}/{query}", status_code=307)


def not_installed_page() -> str:
    what = html.escape(f"{OHIF_APP.name} {OHIF_APP.version}")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>The viewer is not installed · Dicomite</title>
<link rel="stylesheet" href="/portal/static/portal.css">
</head>
<body>
<main>
<h1>The DICOM viewer is not installed</h1>
<p>Dicomite serves the OHIF viewer here once it is installed. On the server, run</p>
<pre><code>dicomite viewer install</code></pre>
<p>with the same <code>--data-dir</code> (or <code>DICOMITE_VIEWER_DIR</code>) as the server.
It downloads {what} from the npm registry, checks its integrity and unpacks it; no Node.js is
needed. Without network access, download the package's tarball elsewhere and install it with
<code>dicomite viewer install --from-file app-{html.escape(OHIF_APP.version)}.tgz</code>.
Then reload this page.</p>
<p><a href="/portal/">Back to the portal</a></p>
</main>
</body>
</html>
"""
