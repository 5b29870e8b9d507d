"""Run ``dicomite`` commands in-process against a data dir of the test module's own."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from dicomite.bootstrap import Context, open_context
from dicomite.cli import console as console_module
from dicomite.cli.main import app
from dicomite.settings import Settings
from tests.fixtures.certificates import self_signed


@dataclass
class Cli:
    data_dir: Path
    runner: CliRunner

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(app, [*args, "--data-dir", str(self.data_dir)], input=input)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def fails(self, *args: str, code: int = 1) -> str:
        """The command's complaint, unwrapped (Rich wraps long lines)."""
        result = self(*args)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        assert "Traceback" not in result.output
        return flat(result.output)

    def create(self, name: str | None = None) -> dict[str, Any]:
        created: dict[str, Any] = self.json("app", "create", name or unique("app"))
        return created

    def context(self) -> Context:
        return open_context(Settings(data_dir=self.data_dir))


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def module_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli") / "data"


@pytest.fixture
def cli(module_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name in [n for n in os.environ if n.startswith("DICOMITE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(console_module.console, "_width", 200)  # a wide terminal: whole cells
    return Cli(module_data_dir, CliRunner())


@pytest.fixture
def context(cli: Cli) -> Iterator[Context]:
    cli.ok("app", "list")  # prepares the deployment
    opened = cli.context()
    yield opened
    opened.store.dispose()


@dataclass
class CertificateFiles:
    certificate: Path
    private_key: Path
    der: bytes

    @property
    def thumbprint(self) -> str:
        return hashlib.sha1(self.der, usedforsecurity=False).hexdigest().upper()


def make_certificate(folder: Path, days: int = 365) -> CertificateFiles:
    """A self-signed RSA certificate and its key, as PEM files."""
    key, cert = self_signed(days, common_name=unique("client"))
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / unique("cert")
    cert_path, key_path = stem.with_suffix(".pem"), stem.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return CertificateFiles(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER))


@pytest.fixture
def certificate(tmp_path: Path) -> CertificateFiles:
    return make_certificate(tmp_path)
