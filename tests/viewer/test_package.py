"""The pin: where npm's registry serves a version's tarball, and its integrity in SRI form."""

from __future__ import annotations

import base64
import hashlib

from dicomite.viewer.package import OHIF_APP, IntegrityCheck, Package

EMPTY_SHA512 = (  # of no bytes at all
    "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6"
    "+SfaPg=="
)


def test_the_pinned_ohif_build_is_fetched_from_npm_by_its_tarball_url() -> None:
    assert OHIF_APP.tarball_url() == "https://registry.npmjs.org/@ohif/app/-/app-3.13.2.tgz"
    assert OHIF_APP.folder_name == "ohif-app-3.13.2"


def test_a_mirror_and_an_unscoped_package_follow_the_same_rule() -> None:
    plain = Package("left-pad", "1.3.0", EMPTY_SHA512)
    assert (
        plain.tarball_url("https://npm.example/")
        == "https://npm.example/left-pad/-/left-pad-1.3.0.tgz"
    )
    assert plain.folder_name == "left-pad-1.3.0"


def test_integrity_is_the_base64_sha512_as_npm_writes_it() -> None:
    check = IntegrityCheck()
    assert check.value == EMPTY_SHA512
    assert check.matches(Package("x", "1", EMPTY_SHA512))
    check.update(b"a")
    check.update(b"b")  # chunk by chunk, as a download arrives
    assert check.value == "sha512-" + base64.b64encode(hashlib.sha512(b"ab").digest()).decode()
    assert not check.matches(Package("x", "1", EMPTY_SHA512))
