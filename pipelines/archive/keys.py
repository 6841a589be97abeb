"""Which objects a run processes and where each output goes.

Selection is a generator (filters, then the limit, then the kind), so it streams any number of keys in
constant memory; :class:`KeyListing` wraps it as a Ray Data source whose single read task lists the store
(or reads a manifest) page by page inside the cluster, never in the driver.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ray.data import Datasource

from pipelines.archive.storage import PAGE_SIZE, ObjectInfo

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
# Output format for --format same, from the key's extension; keys with other extensions (or none) get PNG.
_SAME_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
_FORMAT_OPTIONS = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
_EXTENSIONS = {"JPEG": (".jpg", ".jpeg"), "PNG": (".png",), "WEBP": (".webp",), "TIFF": (".tif", ".tiff")}
VIDEO = "VIDEO"  # the pseudo-format of video keys


def is_video(key: str) -> bool:
    return PurePosixPath(key).suffix.lower() in VIDEO_EXTENSIONS


def check_format(option: str) -> str:
    option = option.lower()
    if option != "same" and option not in _FORMAT_OPTIONS:
        raise ValueError(f"unknown output format {option!r}; choose same|jpeg|png|webp")
    return option


def output_key(key: str, format_option: str) -> tuple[str, str]:
    """(output key, PIL format) for source ``key``. Decided from the key alone, so resuming can test whether
    an output exists before downloading anything: ``same`` keeps the key and the format its extension names;
    another format (or an extension no encoder writes) replaces the extension. Videos keep their key."""
    if is_video(key):
        return key, VIDEO
    path = PurePosixPath(key)
    suffix = path.suffix.lower()
    option = format_option.lower()
    fmt = _SAME_FORMATS.get(suffix, "PNG") if option == "same" else _FORMAT_OPTIONS[option]
    if suffix in _EXTENSIONS[fmt]:
        return key, fmt
    stem = key[: -len(path.suffix)] if path.suffix else key
    return stem + _EXTENSIONS[fmt][0], fmt


@dataclass(frozen=True)
class KeyFilter:
    """Glob patterns on keys relative to SRC (``*`` also matches "/", so ``*.jpg`` matches nested keys)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __call__(self, key: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(key, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(key, p) for p in self.exclude)


def select(
    objects: Iterable[ObjectInfo], keep: KeyFilter, limit: int | None = None, kind: str = "all"
) -> Iterator[ObjectInfo]:
    """Filter, then take the first ``limit``, then keep ``kind`` (all | image | video). The limit counts all
    kinds, so an image pass and a video pass over the same listing cover exactly the same objects."""
    if kind not in {"all", "image", "video"}:
        raise ValueError(f"kind must be all|image|video, got {kind!r}")
    chosen: Iterator[ObjectInfo] = (o for o in objects if keep(o.key))
    if limit is not None:
        chosen = itertools.islice(chosen, limit)
    for obj in chosen:
        if kind == "all" or (kind == "video") == is_video(obj.key):
            yield obj


def pages(objects: Iterable[ObjectInfo], size: int = PAGE_SIZE) -> Iterator[dict[str, list[Any]]]:
    """Group a stream of objects into column dicts of at most ``size`` rows."""
    it = iter(objects)
    while chunk := list(itertools.islice(it, size)):
        yield {"key": [o.key for o in chunk], "size": [o.size for o in chunk]}


class KeyListing(Datasource):
    """A Ray Data source over the selected keys: one read task that streams pages of ``(key, size)`` rows.

    ``objects`` is a picklable zero-argument callable returning the object stream (a store's listing or a
    manifest reader); it runs inside the read task.
    """

    def __init__(
        self,
        objects: Callable[[], Iterable[ObjectInfo]],
        keep: KeyFilter,
        limit: int | None,
        kind: str,
        rows_per_block: int = PAGE_SIZE,
    ) -> None:
        super().__init__()
        self.objects, self.keep, self.limit, self.kind = objects, keep, limit, kind
        self.rows_per_block = rows_per_block

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def read_blocks(self) -> Iterator[Any]:
        import pyarrow as pa

        schema = pa.schema([("key", pa.string()), ("size", pa.int64())])
        chosen = select(self.objects(), self.keep, self.limit, self.kind)
        for page in pages(chosen, self.rows_per_block):
            yield pa.Table.from_pydict(page, schema=schema)

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[Any]:
        from ray.data.block import BlockMetadata
        from ray.data.datasource import ReadTask

        # Listing is sequential (continuation tokens), so one task; it is I/O-bound and far faster than
        # colorizing, and Ray's streaming generator backpressure pauses it when downstream falls behind.
        metadata = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
        return [ReadTask(self.read_blocks, metadata, per_task_row_limit=per_task_row_limit)]
