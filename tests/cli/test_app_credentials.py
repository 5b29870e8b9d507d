"""``dicomite app secret …`` and ``dicomite app cert …``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dicomite.clock import utcnow
from dicomite.identity import credentials
from tests.cli.conftest import CertificateFiles, Cli, make_certificate


def _end(row: dict[str, str]) -> datetime:
    return datetime.fromisoformat(row["endDateTime"].replace("Z", "+00:00"))


def test_secret_value_is_shown_once_with_a_warning(cli: Cli) -> None:
    app = cli.create()["appId"]
    added = cli.ok("app", "secret", "add", app, "--description", "ci pipeline")
    secret_id = cli.json("app", "secret", "list", app)[0]["keyId"]
    value = next(line.split()[-1] for line in added.stdout.splitlines() if "Value:" in line)
    assert len(value) == credentials.SECRET_LENGTH
    assert secret_id in added.stdout
    assert "will not be shown again" in added.stdout
    for later in (
        cli.ok("app", "secret", "list", app),
        cli.ok("app", "secret", "list", app, "--json"),
        cli.ok("app", "show", app),
        cli.ok("app", "show", app, "--json"),
    ):
        assert value not in later.stdout
        assert value[:3] in later.stdout  # the hint
    assert "ci pipeline" in cli.ok("app", "secret", "list", app).stdout


def test_secret_json_has_the_value_and_the_default_expiry_is_180_days(cli: Cli) -> None:
    app = cli.create()["appId"]
    added = cli.json("app", "secret", "add", app)
    assert set(added) == {"keyId", "secretText", "hint", "endDateTime"}
    assert added["hint"] == added["secretText"][:3]
    assert abs(_end(added) - (utcnow() + timedelta(days=180))) < timedelta(minutes=1)
    listed = cli.json("app", "secret", "list", app)
    assert [s["keyId"] for s in listed] == [added["keyId"]]
    assert "secretText" not in listed[0]
    assert listed[0]["expired"] is False


@pytest.mark.parametrize(
    ("expires", "days"), [("730d", 730), ("6m", 182), ("12m", 365), ("24m", 730), ("1d", 1)]
)
def test_expiry_presets_and_durations(cli: Cli, expires: str, days: int) -> None:
    app = cli.create()["appId"]
    added = cli.json("app", "secret", "add", app, "--expires", expires)
    assert abs(_end(added) - (utcnow() + timedelta(days=days))) < timedelta(days=2)


def test_expiry_as_a_date(cli: Cli) -> None:
    app = cli.create()["appId"]
    day = (utcnow() + timedelta(days=90)).date()
    added = cli.json("app", "secret", "add", app, "--expires", day.isoformat())
    assert added["endDateTime"] == f"{day.isoformat()}T00:00:00Z"


@pytest.mark.parametrize("expires", ["25m", "800d", "36m"])
def test_more_than_24_months_is_refused_by_the_domain(cli: Cli, expires: str) -> None:
    app = cli.create()["appId"]
    result = cli.fails("app", "secret", "add", app, "--expires", expires)
    assert "at most 24 months" in result
    assert cli.json("app", "secret", "list", app) == []


@pytest.mark.parametrize("expires", ["soon", "12y", "2025-02-30"])
def test_unreadable_expiry_is_a_usage_error(cli: Cli, expires: str) -> None:
    app = cli.create()["appId"]
    result = cli.fails("app", "secret", "add", app, "--expires", expires, code=2)
    assert "YYYY-MM-DD" in result


def test_secret_remove(cli: Cli) -> None:
    app = cli.create()["appId"]
    first = cli.json("app", "secret", "add", app)["keyId"]
    second = cli.json("app", "secret", "add", app)["keyId"]
    cli.ok("app", "secret", "remove", app, first)
    assert [s["keyId"] for s in cli.json("app", "secret", "list", app)] == [second]
    assert "No password credential" in cli.fails("app", "secret", "remove", app, first)
    assert "not a valid GUID" in cli.fails("app", "secret", "remove", app, "nope")


def test_cert_add_list_remove(cli: Cli, certificate: CertificateFiles) -> None:
    app = cli.create()["appId"]
    added = cli.ok("app", "cert", "add", app, str(certificate.certificate), "--description", "ci")
    assert certificate.thumbprint in added.stdout
    listed = cli.json("app", "cert", "list", app)
    assert [(c["thumbprint"], c["displayName"]) for c in listed] == [(certificate.thumbprint, "ci")]
    assert listed[0]["keyId"] in added.stdout
    assert _end(listed[0]) > utcnow() + timedelta(days=360)
    shown = cli.json("app", "show", app)["keyCredentials"]
    assert shown == listed
    assert certificate.thumbprint[:8] in cli.ok("app", "cert", "list", app).stdout  # folded
    cli.ok("app", "cert", "remove", app, listed[0]["keyId"])
    assert cli.json("app", "cert", "list", app) == []


def test_cert_add_accepts_der_and_refuses_duplicates(cli: Cli, tmp_path: Path) -> None:
    app = cli.create()["appId"]
    pair = make_certificate(tmp_path)
    der = tmp_path / "client.cer"
    der.write_bytes(pair.der)
    added = json.loads(cli.ok("app", "cert", "add", app, str(der), "--json").stdout)
    assert added["thumbprint"] == pair.thumbprint
    duplicate = cli.fails("app", "cert", "add", app, str(pair.certificate))
    assert "already registered" in duplicate


def test_cert_add_refuses_what_is_not_a_certificate(
    cli: Cli, certificate: CertificateFiles
) -> None:
    app = cli.create()["appId"]
    result = cli.fails("app", "cert", "add", app, str(certificate.private_key))
    assert "not an X.509 certificate" in result
    missing = cli.fails("app", "cert", "add", app, str(certificate.private_key) + ".missing")
    assert "Cannot read" in missing
