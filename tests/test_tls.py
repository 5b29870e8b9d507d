"""The local CA and server certificate (``dicomite.tls``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dicomite.tls import ensure_server_certificate


def test_a_replaced_ca_key_is_refused_with_the_way_out(tmp_path: Path) -> None:
    ensure_server_certificate(tmp_path, {"first.example"})
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "ca-key.pem").write_bytes(pem)
    with pytest.raises(ValueError, match=r"ca-key\.pem is not the EC private key .* delete"):
        ensure_server_certificate(tmp_path, {"second.example"})  # a new host: signs with the CA
