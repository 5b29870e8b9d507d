"""The long-lived objects of one server process, built once from a prepared context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from dicomite.bootstrap import Context
from dicomite.dicom.auth import DicomAuth
from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.blobs.protocol import BlobStore
from dicomite.dicom.service import DicomService
from dicomite.identity.assertions import ReplayGuard
from dicomite.identity.external_keys import ExternalKeys
from dicomite.identity.issuance import IssuanceView
from dicomite.identity.keys import KeyRing
from dicomite.identity.oauth2 import TokenService
from dicomite.identity.person_grants import PersonTokens
from dicomite.identity.published_keys import PublishedKeys
from dicomite.identity.signins import SignInRecorder
from dicomite.identity.trust import issuer_jwks, trusted_authorities


@dataclass
class Services:
    context: Context
    keys: KeyRing
    published_keys: PublishedKeys  # what the Graph API and the DICOM service verify with
    signins: SignInRecorder
    tokens: TokenService
    dicom: DicomService

    @property
    def public_url(self) -> str:
        return self.context.settings.effective_public_url


def build_services(context: Context) -> Services:
    settings = context.settings
    keys = KeyRing(context.store, context.protection)
    # Other OpenID providers' keys: federated credentials' issuers, trusted authorities.
    external_keys = ExternalKeys(
        ca_bundle=settings.issuer_ca_bundle, static_jwks=issuer_jwks(settings.issuer_jwks)
    )
    signins = SignInRecorder(context.store)
    people = PersonTokens(
        store=context.store,
        keys=keys,
        protection=context.protection,
        public_url=settings.effective_public_url,
        lifetime=timedelta(seconds=settings.access_token_lifetime_seconds),
    )
    tokens = TokenService(
        public_url=settings.effective_public_url,
        view=IssuanceView(context.store),
        keys=keys,
        protection=context.protection,
        replay=ReplayGuard(context.store),
        signins=signins,
        lifetime=timedelta(seconds=settings.access_token_lifetime_seconds),
        people=people,
        external_keys=external_keys,
    )
    published_keys = PublishedKeys.of_store(
        context.store, max_age=settings.signing_keys_max_age_seconds
    )
    auth = DicomAuth(
        published_keys,
        settings.effective_public_url,
        context.tenant_id,
        settings.dicom_resource_uri,
        authorities=trusted_authorities(settings.trusted_authorities),
        external_keys=external_keys,
    )
    dicom = DicomService(
        context.store,
        open_blob_store(settings.blob_dir, settings.blob_url),
        auth,
        settings.effective_public_url,
        settings.dicom_max_request_bytes,
        max_inflated_bytes=settings.dicom_max_inflated_bytes,
        export_root=settings.export_root,
        operation_batch_size=settings.dicom_operation_batch_size,
    )
    return Services(
        context=context,
        keys=keys,
        published_keys=published_keys,
        signins=signins,
        tokens=tokens,
        dicom=dicom,
    )


def open_blob_store(folder: Path, blob_url: str | None) -> BlobStore:
    """The folder store by default; Azure Blob Storage when ``--blob-url`` is given."""
    if not blob_url:
        return FileSystemBlobStore(folder)
    try:
        from dicomite.dicom.blobs.azure import AzureBlobStore
    except ImportError as error:
        raise RuntimeError(
            f"--blob-url needs the Azure blob store (dicomite.dicom.blobs.azure and "
            f"azure-storage-blob), which cannot be imported: {error}"
        ) from error
    store: BlobStore = AzureBlobStore(blob_url)
    return store
