"""No secret value is ever written anywhere but the response that created it."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.directory import DICOM_SCOPE, Admin
from tests.fixtures.server import Server
from tests.identity.wire import post_token


def files_containing(root: Path, needles: list[bytes]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [n.decode() for n in needles if n in data]
            if hits:
                found[str(path)] = hits
    return found


def test_secret_values_never_reach_disk_or_log(fresh_server: Server) -> None:
    from dicomite.bootstrap import open_context
    from dicomite.settings import Settings

    server = fresh_server
    context = open_context(Settings(data_dir=server.data_dir))
    admin = Admin(context)
    try:
        apps = [admin.register(roles=("Dicom.Read",)) for _ in range(3)]
        extra = [admin.add_secret(apps[0].app_id)[0] for _ in range(2)]
        secrets = [a.secret for a in apps if a.secret] + extra + [server.client_secret]
        for app in apps:
            data = {
                "grant_type": "client_credentials",
                "client_id": app.app_id,
                "client_secret": app.secret or "",
                "scope": DICOM_SCOPE,
            }
            assert post_token(server, data).status_code == 200
            # a wrong secret that contains a real one must not be echoed anywhere either
            data["client_secret"] = (app.secret or "") + "x"
            assert post_token(server, data).status_code == 401
        server.graph_token()
        server.cli("signins", check=False)
    finally:
        context.store.dispose()
        server.stop()  # flushes the sign-in log and the SQLite WAL
    needles = [s.encode() for s in secrets]
    assert files_containing(server.data_dir, needles) == {}
    assert server.log_path is not None
    assert files_containing(server.log_path.parent, needles) == {}
