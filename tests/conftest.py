"""Fixtures shared by the whole suite live in ``tests/fixtures``; this file only lists them."""

pytest_plugins = [
    "tests.fixtures.server",
    "tests.fixtures.postgres",
    "tests.fixtures.azurite",
    "tests.fixtures.stores",
    "tests.fixtures.directory",
    "tests.fixtures.dicom",
    "tests.fixtures.browser",
    "tests.fixtures.oidc_issuer",
    "tests.fixtures.azure_cli",
]
