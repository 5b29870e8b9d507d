"""One contract for every ``BlobStore``: the folder store and Azure Blob Storage (Azurite)."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceModifiedError

from dicomite.dicom.blobs.azure import (
    BLOCK_SIZE,
    EMULATOR_KEY,
    AzureBlobStore,
    BlobUrlError,
    parse_blob_url,
)
from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.blobs.protocol import CHUNK, BlobStore, WriterFinished, new_blob_key
from tests.fixtures.azurite import Azurite

MIB = 1024 * 1024


@pytest.fixture(
    params=[
        pytest.param("folder", id="folder"),
        pytest.param("azurite", id="azurite", marks=pytest.mark.azurite),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "folder":
        yield FileSystemBlobStore(tmp_path / "blobs")
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    azure_store = AzureBlobStore(azurite.new_url())
    yield azure_store
    azure_store.close()


def put(store: BlobStore, data: bytes, chunk: int = CHUNK) -> str:
    key = new_blob_key()
    with store.writer(key) as writer:
        for start in range(0, len(data), chunk):
            writer.write(data[start : start + chunk])
        assert writer.commit() == len(data)
    return key


def read_all(store: BlobStore, key: str) -> bytes:
    with store.open(key) as stream:
        return stream.read()


def test_round_trip(store: BlobStore) -> None:
    key = put(store, b"DICM" * 100)
    assert read_all(store, key) == b"DICM" * 100
    assert store.size(key) == 400


def test_local_path_is_the_blob_file_or_none(store: BlobStore) -> None:
    key = put(store, b"DICM" * 10)
    path = store.local_path(key)
    if isinstance(store, AzureBlobStore):
        assert path is None  # blobs are in the storage service
    else:
        assert path is not None and Path(path).read_bytes() == b"DICM" * 10


def test_a_finished_writer_refuses_more(store: BlobStore) -> None:
    for finish in ("commit", "abort"):
        with store.writer(new_blob_key()) as writer:
            writer.write(b"DICM")
            if finish == "commit":
                writer.commit()
            else:
                writer.abort()
            with pytest.raises(WriterFinished):
                writer.write(b"more")
            with pytest.raises(WriterFinished):
                writer.commit()


def test_empty_blob(store: BlobStore) -> None:
    key = put(store, b"")
    assert store.size(key) == 0
    assert read_all(store, key) == b""


def test_large_blob_in_chunks_with_ranged_reads(store: BlobStore) -> None:
    data = random.Random(20).randbytes(20 * MIB)
    key = put(store, data, chunk=MIB)
    assert store.size(key) == len(data)
    with store.open(key) as stream:
        assert stream.seekable()
        assert stream.read(10) == data[:10]
        assert stream.seek(BLOCK_SIZE - 5) == BLOCK_SIZE - 5
        assert stream.read(10) == data[BLOCK_SIZE - 5 : BLOCK_SIZE + 5]  # across a block
        stream.seek(3, io.SEEK_CUR)
        assert stream.read(MIB) == data[BLOCK_SIZE + 8 : BLOCK_SIZE + 8 + MIB]
        stream.seek(-7, io.SEEK_END)
        assert stream.read(100) == data[-7:]
        assert stream.read(1) == b""
        stream.seek(123)
        assert stream.read() == data[123:]
    assert read_all(store, key) == data


def test_chunks_written_at_once_and_names_synced_later(store: BlobStore) -> None:
    """What STOW does: a part's chunks (views of the body, some empty) in one call; blobs
    committed without their folder sync, then one sync for the batch."""
    data = random.Random(7).randbytes(3 * MIB + 5)
    view = memoryview(data)
    chunks = [
        view[:10],
        b"",
        view[10:MIB],
        *(view[n : n + 4096] for n in range(MIB, len(data), 4096)),
    ]
    keys = []
    for _ in range(3):
        key = new_blob_key()
        with store.writer(key) as writer:
            writer.write_all(chunks)
            assert writer.commit(sync_name=False) == len(data)
        keys.append(key)
    store.sync_names(keys)
    assert all(read_all(store, key) == data for key in keys)


def test_not_visible_before_commit(store: BlobStore) -> None:
    key = new_blob_key()
    with store.writer(key) as writer:
        writer.write(b"x" * (BLOCK_SIZE + 1))  # one block already staged
        assert store.size(key) is None
        assert key not in list(store.keys())
        with pytest.raises(FileNotFoundError):
            store.open(key)
        writer.commit()
    assert store.size(key) == BLOCK_SIZE + 1
    assert key in list(store.keys())


def test_abort_leaves_nothing(store: BlobStore) -> None:
    key = new_blob_key()
    writer = store.writer(key)
    writer.write(b"x" * (BLOCK_SIZE + 1))
    writer.abort()
    assert store.size(key) is None
    assert list(store.keys()) == []


def test_exception_inside_writer_leaves_nothing(store: BlobStore) -> None:
    key = new_blob_key()

    def interrupted_upload() -> None:
        with store.writer(key) as writer:
            writer.write(b"x" * (BLOCK_SIZE + 1))
            raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        interrupted_upload()
    assert store.size(key) is None
    assert list(store.keys()) == []


def test_delete(store: BlobStore) -> None:
    key = put(store, b"gone soon")
    store.delete(key)
    assert store.size(key) is None
    store.delete(key)  # missing is fine
    store.delete(new_blob_key())


def test_keys_lists_committed_blobs(store: BlobStore) -> None:
    written = sorted(put(store, bytes([n])) for n in range(3))
    new_blob_key()  # a key never written is never listed
    assert sorted(store.keys()) == written


def test_open_missing_blob(store: BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.open(new_blob_key())


@pytest.mark.parametrize("key", ["../x", "instances/../../x", "/etc/passwd", "/tmp/x.dcm"])
def test_hostile_keys_rejected(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        store.writer(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.size(key)


def _rss_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


@pytest.mark.memory
@pytest.mark.timeout(60)
def test_memory_stays_flat_for_256_mib(store: BlobStore) -> None:
    chunk = random.Random(256).randbytes(MIB)
    baseline = peak = _rss_bytes()
    written, key = hashlib.sha256(), new_blob_key()
    with store.writer(key) as writer:
        for n in range(256):
            piece = n.to_bytes(4, "big") + chunk[4:]
            written.update(piece)
            writer.write(piece)
            peak = max(peak, _rss_bytes())
        writer.commit()
    read = hashlib.sha256()
    with store.open(key) as stream:
        while piece := stream.read(MIB):
            read.update(piece)
            peak = max(peak, _rss_bytes())
    assert read.digest() == written.digest()
    assert peak - baseline < 64 * MIB


class TestAzureSpecifics:
    def test_path_style_url_with_well_known_key(self, azurite: Azurite) -> None:
        store = AzureBlobStore(f"{azurite.endpoint}/path-style")
        key = put(store, b"path style")
        assert read_all(store, key) == b"path style"
        store.close()

    def test_reader_refuses_a_blob_replaced_under_it(self, azurite: Azurite) -> None:
        store = AzureBlobStore(azurite.new_url())
        key = put(store, b"a" * (BLOCK_SIZE + 10))
        with store.open(key) as stream:
            stream.read(10)
            with store.writer(key) as writer:
                writer.write(b"b" * (BLOCK_SIZE + 10))
                writer.commit()
            stream.seek(BLOCK_SIZE)
            with pytest.raises(ResourceModifiedError):
                stream.read(10)
        store.close()


class TestBlobUrl:
    def test_connection_string(self) -> None:
        location = parse_blob_url("azure://dicom?AccountName=a;AccountKey=k;EndpointSuffix=x")
        assert location.container == "dicom"
        assert location.connection_string == "AccountName=a;AccountKey=k;EndpointSuffix=x"

    def test_account_url_with_sas(self) -> None:
        location = parse_blob_url("https://acct.blob.core.windows.net/dicom?sv=2024&sig=abc")
        assert location.account_url == "https://acct.blob.core.windows.net"
        assert (location.container, location.credential) == ("dicom", "sv=2024&sig=abc")

    def test_emulator_url_uses_the_well_known_key(self) -> None:
        location = parse_blob_url("http://127.0.0.1:10000/devstoreaccount1/dicom")
        assert location.account_url == "http://127.0.0.1:10000/devstoreaccount1"
        assert location.credential == {
            "account_name": "devstoreaccount1",
            "account_key": EMULATOR_KEY,
        }

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("s3://bucket/x", "unsupported blob URL"),
            ("/var/blobs", "unsupported blob URL"),
            ("azure://dicom", "needs a connection string"),
            ("azure://dicom?nonsense", "needs a connection string"),
            ("azure://Bad_Name?AccountName=a;AccountKey=k", "invalid container name"),
            ("https://acct.blob.core.windows.net?sv=1&sig=2", "must name a container"),
            ("https://acct.blob.core.windows.net/a/b/c?sv=1", "must name a container"),
            ("http://127.0.0.1:10000/devstoreaccount1/x", "invalid container name"),
        ],
    )
    def test_bad_urls_are_explained(self, url: str, message: str) -> None:
        with pytest.raises(BlobUrlError, match=message):
            parse_blob_url(url)

    def test_secrets_stay_out_of_errors(self) -> None:
        with pytest.raises(BlobUrlError) as caught:
            parse_blob_url("https://acct.blob.core.windows.net/a/b/c?sig=SECRET")
        assert "SECRET" not in str(caught.value)
