"""Bulk-colorize an archive (S3-compatible object storage or a local folder) with Ray Data.

from pipelines.archive import ArchiveConfig, run_archive

summary = run_archive(ArchiveConfig(src="s3://bucket/archive", dst="s3://bucket/colorized"))
print(summary.format())
"""

from pipelines.archive.config import ArchiveConfig, Outputs, Resources, Selection
from pipelines.archive.keys import KeyFilter, is_video, output_key
from pipelines.archive.pipeline import ArchiveInterrupted, dry_run, run_archive
from pipelines.archive.report import Summary, load_report, load_summaries
from pipelines.archive.storage import (
    LocalStore,
    Location,
    ObjectInfo,
    RetryPolicy,
    S3Store,
    StorageError,
    StorageOptions,
    open_store,
)

__all__ = [
    "ArchiveConfig",
    "ArchiveInterrupted",
    "KeyFilter",
    "LocalStore",
    "Location",
    "ObjectInfo",
    "Outputs",
    "Resources",
    "RetryPolicy",
    "S3Store",
    "Selection",
    "StorageError",
    "StorageOptions",
    "Summary",
    "dry_run",
    "is_video",
    "load_report",
    "load_summaries",
    "open_store",
    "output_key",
    "run_archive",
]
