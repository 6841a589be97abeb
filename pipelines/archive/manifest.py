"""Manifests: a Parquet or CSV file listing the keys to process, instead of listing SRC. Read in chunks, so a
manifest of millions of keys streams like a listing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.archive.storage import PAGE_SIZE, Location, ObjectInfo, StorageOptions, open_store


def iter_manifest(
    path: str | Path, source: Location, options: StorageOptions | None = None, rows_per_read: int = PAGE_SIZE
) -> Iterator[ObjectInfo]:
    """Stream the ``key`` (and optional ``size``) column of a Parquet or CSV manifest, ``rows_per_read`` rows
    at a time. Keys may be relative to SRC or full URLs under it. The manifest itself may be on S3."""
    import tempfile

    text = str(path)
    if text.startswith("s3://"):
        where = Location.parse(text.rsplit("/", 1)[0])
        store = open_store(where, options)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / text.rsplit("/", 1)[1]
            store.download(local.name, local)
            yield from iter_manifest(local, source, options, rows_per_read)
        return
    for table in _manifest_batches(Path(text), rows_per_read):
        if "key" not in table.column_names:
            raise ValueError(f"manifest {text} has no 'key' column (columns: {table.column_names})")
        keys = table.column("key").to_pylist()
        sizes = table.column("size").to_pylist() if "size" in table.column_names else [None] * len(keys)
        for key, size in zip(keys, sizes, strict=True):
            if not key:
                continue
            yield ObjectInfo(_relative_key(str(key), source), -1 if size is None else int(size))


def _manifest_batches(path: Path, rows: int) -> Iterator[Any]:
    import pyarrow as pa

    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        file = pq.ParquetFile(path)
        columns = [c for c in ("key", "size") if c in file.schema_arrow.names] or None
        for batch in file.iter_batches(batch_size=rows, columns=columns):
            yield pa.Table.from_batches([batch])
        return
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=1 << 20),
        convert_options=pcsv.ConvertOptions(column_types={"key": pa.string()}),
    )
    for batch in reader:
        yield pa.Table.from_batches([batch])


def _relative_key(key: str, source: Location) -> str:
    if source.scheme == "s3" and key.startswith("s3://"):
        full = key[5:].partition("/")[2]
        if not full.startswith(source.prefix):
            raise ValueError(f"manifest key {key!r} is not under {source.url}")
        return full[len(source.prefix) :]
    if source.scheme == "file" and key.startswith(source.prefix):
        return key[len(source.prefix) :]
    return key.lstrip("/")
