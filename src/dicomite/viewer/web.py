"""The viewer over HTTP: ``/viewer/`` (OHIF's pages: always its ``index.html``), the generated
``app-config.js``, and the OHIF build's files at the site root, by the names the build holds
and no others. The one Starlette adapter of the package.

The build is looked for on the first requests and, while it is missing, again every few
seconds, so ``dicomite viewer install`` next to a running server needs no restart. Until then
``/viewer/`` says how to install it.
"""

from __future__ import annotations

import html
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose

from dicomite.blocking import run_blocking
from dicomite.bootstrap import Context
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
    """The installed OHIF build, once found."""

    def __init__(self, context: Context) -> None:
        self._folder = context.settings.effective_viewer_dir
        self._build: ViewerBuild | None = None
        self._next_look = 0.0

    async def build(self) -> ViewerBuild | None:
        if self._build is None and time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + LOOK_AGAIN_SECONDS
            self._build = await run_blocking(load_build, self._folder, OHIF_APP)
        return self._build


class BuildFiles:
    """The build's files by their paths (GET, HEAD); any other path or method is the 404 of an
    unknown path. Mounted at the root, after every other route, as a plain ASGI app: routing
    answers unknown paths 404 whatever the method, and so does this."""

    def __init__(self, installed: InstalledBuild) -> None:
        self._installed = installed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await WebSocketClose()(scope, receive, send)
            return
        name = scope["path"].removeprefix("/")
        build = await self._installed.build() if scope["method"] in _READ_METHODS else None
        found = build.files.get(name) if build else None
        if found is None:
            raise HTTPException(status_code=404)
        headers = {**_NOSNIFF, "Cache-Control": cache_control(name)}
        await _send(found, name, headers)(scope, receive, send)


def viewer_routes(context: Context) -> list[BaseRoute]:
    """The viewer's routes; the last one takes any path, so they go after all others."""
    installed = InstalledBuild(context)
    settings = context.settings
    script = app_config_js(
        Deployment(settings.effective_public_url, context.tenant_id, settings.dicom_resource_uri)
    )

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
        Mount("", app=BuildFiles(installed)),
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
