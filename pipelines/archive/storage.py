"""Where archives live: local folders and S3-compatible object stores behind one small interface.

Every call to a store is retried with exponential backoff and jitter on throttling, 5xx and connection errors
(the policy lives here, not in botocore, so it is the same for every operation and can be tested). Writes are
atomic: a local file appears under its final name only once complete (write to a hidden temporary name, then
rename), and an S3 object only exists once its PUT or multipart upload has completed. Listing is a generator
over pages, so a caller never holds more than one page of keys.
"""

from __future__ import annotations

import copy
import functools
import os
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from model.errors import ColorizeError

T = TypeVar("T")

PAGE_SIZE = 1000  # keys per listing request (the S3 maximum)
TEMP_MARK = ".colorize-part-"  # local temporary files carry this in their name and are never listed


class StorageError(ColorizeError):
    """A storage operation failed for good (a permanent error, or a transient one after every retry)."""

    http_status = 502
    exit_code = 2


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(max_delay, base_delay * 2**n))."""

    max_attempts: int = 8
    base_delay: float = 0.2  # seconds
    max_delay: float = 20.0  # seconds

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must be >= 0")

    def delay(self, attempt: int) -> float:
        return random.uniform(0.0, min(self.max_delay, self.base_delay * (2**attempt)))


@dataclass(frozen=True)
class StorageOptions:
    """How to reach an S3-compatible store. Credentials default to the usual AWS chain (environment, profile,
    instance role) on every worker; explicit keys are for stores such as a local test server."""

    endpoint_url: str | None = None
    region_name: str | None = None
    profile_name: str | None = None
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    max_pool_connections: int = 64
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


# --------------------------------------------------------------------------------------------- retries
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "503 SlowDown",
}


def is_transient(exc: BaseException) -> bool:
    """Whether retrying ``exc`` may help: throttling, server-side (5xx) and connection-level failures."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
        ResponseStreamingError,
    )

    if isinstance(
        exc,
        (
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
            ResponseStreamingError,
        ),
    ):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error.get("Code") in _TRANSIENT_CODES or status == 429 or status >= 500
    return isinstance(exc, (ConnectionError, TimeoutError))


def with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str = "storage call",
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Call ``fn``; on a transient error wait (see :class:`RetryPolicy`) and try again. Permanent errors and
    the last transient one become :class:`StorageError` naming ``what``. ``on_retry`` hears of every
    transient error that is retried (the run's retry counts)."""
    for attempt in range(policy.max_attempts):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise StorageError(f"{what}: {type(exc).__name__}: {exc}") from exc
            if attempt + 1 == policy.max_attempts:
                raise StorageError(
                    f"{what}: {type(exc).__name__}: {exc} (gave up after {policy.max_attempts} attempts)"
                ) from exc
            if on_retry is not None:
                on_retry(exc)
            sleep(policy.delay(attempt))
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------------------- locations
@dataclass(frozen=True)
class Location:
    """``s3://bucket/prefix`` or a local directory. ``prefix`` is "" or ends in "/"; keys are relative to it."""

    scheme: str  # "s3" | "file"
    bucket: str  # "" for local folders
    prefix: str  # S3 key prefix, or the absolute local directory with a trailing "/"

    @classmethod
    def parse(cls, url: str | Path) -> Location:
        text = str(url)
        if text.startswith("s3://"):
            bucket, _, prefix = text[5:].partition("/")
            if not bucket:
                raise ValueError(f"no bucket in {text!r}")
            prefix = prefix.strip("/")
            return cls("s3", bucket, prefix + "/" if prefix else "")
        if "://" in text:
            raise ValueError(f"unsupported storage URL {text!r}: use s3://bucket/prefix or a local directory")
        return cls("file", "", str(Path(text).expanduser().resolve()).rstrip("/") + "/")

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.scheme == "s3" else self.prefix

    def child(self, relative: str) -> Location:
        """The location of a sub-prefix (a report folder under DST, say)."""
        relative = relative.strip("/")
        return Location(self.scheme, self.bucket, self.prefix + relative + "/")

    def overlaps(self, other: Location) -> bool:
        """True when one location contains the other (writing to one could change the other)."""
        if self.scheme != other.scheme or self.bucket != other.bucket:
            return False
        return self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix)


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the store's location, "/"-separated
    size: int  # bytes; -1 when unknown (a manifest without sizes)


class Store(Protocol):
    """What the archive job needs from a store. Implementations must pickle (they travel to Ray workers)."""

    location: Location

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """Every object under the location, in a stable order, one page at a time."""
        ...

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""
        ...

    def get(self, key: str) -> bytes: ...

    def put(self, key: str, data: bytes) -> None:
        """Write atomically: readers see the old object (or none) or the whole new one."""
        ...

    def download(self, key: str, path: Path) -> None: ...

    def upload(self, path: Path, key: str) -> None: ...


# ---------------------------------------------------------------------------------------- local disk
class LocalStore:
    """A directory tree. Keys are "/"-separated paths relative to the root."""

    def __init__(self, location: Location) -> None:
        assert location.scheme == "file", location
        self.location = location
        self.root = Path(location.prefix)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not str(path).startswith(str(self.root.resolve())):
            raise StorageError(f"key {key!r} escapes {self.root}")
        return path

    def iter_objects(self) -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            raise StorageError(f"no such directory: {self.root}")
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()  # os.walk descends in this order: keys come out sorted per directory
            base = Path(dirpath)
            for name in sorted(filenames):
                if TEMP_MARK in name:
                    continue
                path = base / name
                try:
                    size = path.stat().st_size
                except OSError:
                    continue  # vanished between listing and stat
                yield ObjectInfo(path.relative_to(self.root).as_posix(), size)

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"read {key}: {exc}") from exc

    def _temp(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.with_name(f".{target.name}{TEMP_MARK}{uuid.uuid4().hex[:8]}")

    def put(self, key: str, data: bytes) -> None:
        target = self._path(key)
        tmp = self._temp(target)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, target)  # atomic on POSIX: never a half-written output under the final name
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"write {key}: {exc}") from exc

    def download(self, key: str, path: Path) -> None:
        shutil.copyfile(self._path(key), path)

    def upload(self, path: Path, key: str) -> None:
        target = self._path(key)
        tmp = self._temp(target)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"write {key}: {exc}") from exc


# ------------------------------------------------------------------------------------------------ S3
@functools.lru_cache(maxsize=8)
def _s3_client(options: StorageOptions) -> Any:
    """One thread-safe client per process and options (clients are costly to create)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        profile_name=options.profile_name,
        aws_access_key_id=options.aws_access_key_id,
        aws_secret_access_key=options.aws_secret_access_key,
        aws_session_token=options.aws_session_token,
        region_name=options.region_name,
    )
    config = Config(
        max_pool_connections=options.max_pool_connections,
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        retries={"total_max_attempts": 1},  # retries are ours (with_retries), not botocore's
    )
    return session.client("s3", endpoint_url=options.endpoint_url, config=config)


class S3Store:
    """An S3 bucket prefix. ``client`` replaces the real one (tests); it is not pickled. ``tally`` (anything
    with ``record(operation)``, e.g. :class:`~pipelines.archive.retry_tally.RetryTally`) counts retries."""

    def __init__(
        self, location: Location, options: StorageOptions | None = None, client: Any = None, tally: Any = None
    ) -> None:
        assert location.scheme == "s3", location
        self.location = location
        self.options = options or StorageOptions()
        self._client = client
        self.tally = tally

    def __getstate__(self) -> dict[str, Any]:
        return {"location": self.location, "options": self.options, "_client": None, "tally": self.tally}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"tally": None, **state})

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else _s3_client(self.options)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        operation = what.split(" ", 1)[0]  # list, head, get, put, download, upload
        tally = self.tally
        on_retry = None if tally is None else (lambda exc: tally.record(operation))
        return with_retries(fn, self.options.retry, what=what, on_retry=on_retry)

    def _key(self, key: str) -> str:
        return self.location.prefix + key

    def iter_objects(self) -> Iterator[ObjectInfo]:
        bucket, prefix = self.location.bucket, self.location.prefix
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": PAGE_SIZE}
            if token:
                kwargs["ContinuationToken"] = token
            page: dict[str, Any] = self._call(
                f"list s3://{bucket}/{prefix}", functools.partial(self.client.list_objects_v2, **kwargs)
            )
            for item in page.get("Contents", ()):
                key = item["Key"][len(prefix) :]
                if key and not key.endswith("/"):  # skip "folder" marker objects
                    yield ObjectInfo(key, int(item["Size"]))
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        def head() -> int | None:
            try:
                response = self.client.head_object(Bucket=self.location.bucket, Key=self._key(key))
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 404 or exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise
            return int(response["ContentLength"])

        return self._call(f"head {self._key(key)}", head)

    def get(self, key: str) -> bytes:
        def read() -> bytes:  # the body is read inside the retry: a connection dropped mid-body is retried
            body = self.client.get_object(Bucket=self.location.bucket, Key=self._key(key))["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        return self._call(f"get {self._key(key)}", read)

    def put(self, key: str, data: bytes) -> None:
        self._call(
            f"put {self._key(key)}",
            lambda: self.client.put_object(Bucket=self.location.bucket, Key=self._key(key), Body=data),
        )

    def download(self, key: str, path: Path) -> None:
        self._call(
            f"download {self._key(key)}",
            lambda: self.client.download_file(self.location.bucket, self._key(key), str(path)),
        )

    def upload(self, path: Path, key: str) -> None:
        # Managed (multipart for large files) upload: the object only appears once the upload completes.
        self._call(
            f"upload {self._key(key)}",
            lambda: self.client.upload_file(str(path), self.location.bucket, self._key(key)),
        )


def open_store(url: str | Path | Location, options: StorageOptions | None = None, tally: Any = None) -> Store:
    location = url if isinstance(url, Location) else Location.parse(url)
    if location.scheme == "s3":
        return S3Store(location, options, tally=tally)
    return LocalStore(location)


def with_tally(store: Store, tally: Any) -> Store:
    """A copy of ``store`` whose retries are counted by ``tally`` (stores without retries are returned as is)."""
    if not hasattr(store, "tally"):
        return store
    counted = copy.copy(store)
    counted.tally = tally
    return counted
