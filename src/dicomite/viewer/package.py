"""The one OHIF build Dicomite serves: an npm package pinned by version and integrity.

npm's registry serves a package version as a gzipped tarball at
``{registry}/{name}/-/{unscoped name}-{version}.tgz``; ``integrity`` is its Subresource
Integrity value (``sha512-`` and the base64 SHA-512 of the tarball), as the registry's
``dist.integrity`` and npm's lock files give it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

NPM_REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str

    def tarball_url(self, registry: str = NPM_REGISTRY) -> str:
        unscoped = self.name.rsplit("/", 1)[-1]
        return f"{registry.rstrip('/')}/{self.name}/-/{unscoped}-{self.version}.tgz"

    @property
    def folder_name(self) -> str:
        """Its folder inside the viewer dir: ``ohif-app-3.13.2``."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}"


class IntegrityCheck:
    """The SHA-512 of a tarball as it streams by, in Subresource Integrity form."""

    def __init__(self) -> None:
        self._digest = hashlib.sha512()

    def update(self, chunk: bytes) -> None:
        self._digest.update(chunk)

    @property
    def value(self) -> str:
        return "sha512-" + base64.b64encode(self._digest.digest()).decode()

    def matches(self, package: Package) -> bool:
        return hmac.compare_digest(self.value, package.integrity)


# OHIF Viewer 3 as its maintainers publish it built (``dist/``: no Node.js needed to serve it).
OHIF_APP = Package(
    name="@ohif/app",
    version="3.13.2",
    integrity="sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA==",
)
