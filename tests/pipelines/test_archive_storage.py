"""Stores: locations, atomic local writes, retries with backoff on transient errors, S3 listing pages against
a real S3 API (moto), manifests streamed from CSV and Parquet."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from pipelines.archive import storage
from pipelines.archive.manifest import iter_manifest
from pipelines.archive.storage import (
    LocalStore,
    Location,
    ObjectInfo,
    RetryPolicy,
    S3Store,
    StorageError,
    is_transient,
    open_store,
    with_retries,
)
from tests.pipelines.archive_helpers import MotoS3, moto_s3

__all__ = ["moto_s3"]


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


# ---------------------------------------------------------------------------------------------- locations
def test_locations_parse_and_overlap(tmp_path: Path) -> None:
    assert Location.parse("s3://bucket/a/b/") == Location("s3", "bucket", "a/b/")
    assert Location.parse("s3://bucket") == Location("s3", "bucket", "")
    assert Location.parse(tmp_path).prefix == str(tmp_path.resolve()) + "/"
    assert Location.parse("s3://b/archive").overlaps(Location.parse("s3://b/archive/colorized"))
    assert Location.parse("s3://b/archive/x").overlaps(Location.parse("s3://b/archive"))
    assert not Location.parse("s3://b/archive").overlaps(Location.parse("s3://b/archive-colorized"))
    assert not Location.parse("s3://b/archive").overlaps(Location.parse("s3://other/archive"))
    assert Location.parse(tmp_path).overlaps(Location.parse(tmp_path / "out"))
    with pytest.raises(ValueError, match="unsupported"):
        Location.parse("gs://bucket/x")


# ----------------------------------------------------------------------------------------------- local disk
def test_local_store_lists_sorted_and_writes_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(Location.parse(tmp_path))
    for key in ["b/2.jpg", "a/z/1.jpg", "a/0.jpg", "c.png"]:
        store.put(key, key.encode())
    assert [o.key for o in store.iter_objects()] == ["c.png", "a/0.jpg", "a/z/1.jpg", "b/2.jpg"]
    assert store.size("a/0.jpg") == len(b"a/0.jpg") and store.size("missing.jpg") is None
    assert store.get("b/2.jpg") == b"b/2.jpg"

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(storage.os, "replace", broken_replace)
    with pytest.raises(StorageError, match="disk full"):
        store.put("c.png", b"new content that never lands")
    with pytest.raises(StorageError):
        store.put("d/new.png", b"x")
    monkeypatch.undo()
    assert store.get("c.png") == b"c.png"  # the old output is intact
    assert not (tmp_path / "d" / "new.png").exists()
    assert [p.name for p in tmp_path.rglob("*") if storage.TEMP_MARK in p.name] == []  # no temp files left


def test_local_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    store = LocalStore(Location.parse(tmp_path / "root"))
    with pytest.raises(StorageError, match="escapes"):
        store.put("../outside.jpg", b"x")


# -------------------------------------------------------------------------------------------------- retries
def test_transient_errors_are_recognised() -> None:
    assert is_transient(client_error("SlowDown", 503))
    assert is_transient(client_error("InternalError", 500))
    assert is_transient(client_error("Whatever", 502))
    assert is_transient(client_error("TooManyRequests", 429))
    assert is_transient(EndpointConnectionError(endpoint_url="http://x"))
    assert not is_transient(client_error("AccessDenied", 403))
    assert not is_transient(client_error("NoSuchKey", 404))
    assert not is_transient(ValueError("bug"))


def test_backoff_grows_and_gives_up() -> None:
    waits: list[float] = []
    calls = 0

    def always_throttled() -> None:
        nonlocal calls
        calls += 1
        raise client_error("SlowDown", 503)

    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=4.0)
    with pytest.raises(StorageError, match="gave up after 5 attempts"):
        with_retries(always_throttled, policy, what="get x", sleep=waits.append)
    assert calls == 5 and len(waits) == 4
    assert all(0 <= w <= min(4.0, 2**i) for i, w in enumerate(waits))


class FlakyS3Client:
    """Fails each operation with the given errors first, then behaves like a one-object bucket."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors, self.calls, self.stored = list(errors), 0, {"photos/a.jpg": b"jpeg bytes"}

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self._maybe_fail()
        return {"Body": io.BytesIO(self.stored[Key])}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:
        self._maybe_fail()
        self.stored[Key] = Body
        return {}

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        self._maybe_fail()
        contents = [{"Key": k, "Size": len(v)} for k, v in sorted(self.stored.items())]
        return {"Contents": contents, "IsTruncated": False}


def test_s3_store_retries_transient_errors_then_succeeds() -> None:
    transient = [
        client_error("SlowDown", 503),
        EndpointConnectionError(endpoint_url="http://x"),
        client_error("x", 500),
    ]
    client = FlakyS3Client(transient)
    options = storage.StorageOptions(retry=RetryPolicy(max_attempts=4, base_delay=0.0))
    store = S3Store(Location.parse("s3://bucket/photos"), options, client=client)
    assert store.get("a.jpg") == b"jpeg bytes"
    assert client.calls == 4
    client.errors = [client_error("SlowDown", 503)]
    store.put("b.jpg", b"out")
    assert client.stored["photos/b.jpg"] == b"out"
    client.errors = [client_error("InternalError", 500)]
    assert [o.key for o in store.iter_objects()] == ["a.jpg", "b.jpg"]


def test_s3_store_does_not_retry_permanent_errors() -> None:
    client = FlakyS3Client([client_error("AccessDenied", 403)])
    store = S3Store(Location.parse("s3://bucket/photos"), client=client)
    with pytest.raises(StorageError, match="AccessDenied"):
        store.get("a.jpg")
    assert client.calls == 1


# ----------------------------------------------------------------------------------------------- real S3 API
def test_s3_listing_streams_page_by_page(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    url = moto_s3.bucket("listing")
    store = S3Store(Location.parse(f"{url}/scans"), moto_s3.options)
    keys = sorted(f"box-{i // 10}/scan-{i:03d}.jpg" for i in range(23))
    for key in keys:
        store.put(key, b"x" * 3)
    open_store(url, moto_s3.options).put("scans-other/not-mine.jpg", b"x")  # a neighbouring prefix
    open_store(url, moto_s3.options).put("scans/folder-marker/", b"")
    pages: list[int] = []
    real_list = store.client.list_objects_v2

    def counting_list(**kwargs: Any) -> Any:
        page = real_list(**kwargs)
        pages.append(len(page.get("Contents", ())))
        return page

    monkeypatch.setattr(storage, "PAGE_SIZE", 5)
    monkeypatch.setattr(store.client, "list_objects_v2", counting_list)
    listing = store.iter_objects()
    first = next(listing)
    assert first == ObjectInfo(keys[0], 3) and pages == [5]  # one page fetched so far
    assert [first.key] + [o.key for o in listing] == keys
    assert len(pages) == 5
    assert store.size(keys[0]) == 3 and store.size("nope.jpg") is None


# ------------------------------------------------------------------------------------------------ manifests
def test_manifests_stream_keys_from_csv_and_parquet(tmp_path: Path, moto_s3: MotoS3) -> None:
    src = Location.parse("s3://bucket/archive")
    keys = [f"a/{i}.jpg" for i in range(25)]
    csv = tmp_path / "keys.csv"
    csv.write_text("key,size\n" + "".join(f"{k},{i}\n" for i, k in enumerate(keys)))
    parquet = tmp_path / "keys.parquet"
    pq.write_table(pa.table({"key": [f"s3://bucket/archive/{k}" for k in keys]}), parquet)
    from_csv = list(iter_manifest(csv, src, rows_per_read=7))
    assert [o.key for o in from_csv] == keys and from_csv[3].size == 3
    from_parquet = list(iter_manifest(parquet, src, rows_per_read=7))
    assert [o.key for o in from_parquet] == keys and from_parquet[0].size == -1
    url = moto_s3.bucket("manifests")
    open_store(url, moto_s3.options).put("lists/keys.csv", csv.read_bytes())
    assert [o.key for o in iter_manifest(f"{url}/lists/keys.csv", src, moto_s3.options)] == keys
    with pytest.raises(ValueError, match="not under"):
        next(iter_manifest(_write(tmp_path / "bad.csv", "key\ns3://bucket/elsewhere/x.jpg\n"), src))
    with pytest.raises(ValueError, match="no 'key' column"):
        next(iter_manifest(_write(tmp_path / "nokey.csv", "path\nx.jpg\n"), src))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
