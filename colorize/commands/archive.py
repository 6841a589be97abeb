"""``colorize archive SRC DST``: colorize a whole archive (S3 or a local folder) with Ray Data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from colorize.options import add_model_options, model_spec


def workers(text: str) -> tuple[int, int]:
    """``N`` or ``MIN,MAX``."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN,MAX, got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or not 1 <= parts[0] <= parts[1]:
        raise argparse.ArgumentTypeError(f"expected N or MIN,MAX with 1 <= MIN <= MAX, got {text!r}")
    return parts[0], parts[1]


def add_archive_options(p: argparse.ArgumentParser) -> None:
    """Every ``ArchiveConfig`` option except SRC and DST (``colorize demo`` reuses them), grouped as the config's
    fields are: storage and selection, outputs, resources, the model."""
    _add_selection_options(p)
    _add_output_options(p)
    _add_resource_options(p)
    add_model_options(p)


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("storage")
    g.add_argument("--endpoint-url", help="S3-compatible endpoint (MinIO, Ceph, GCS, R2...); default: AWS")
    g.add_argument("--region", help="S3 region (default: the AWS configuration's)")
    g.add_argument(
        "--manifest",
        help="Parquet or CSV file with a 'key' column (and optional 'size') to process instead of listing SRC",
    )
    g = p.add_argument_group("selection")
    g.add_argument("--include", action="append", default=[], metavar="GLOB", help="only keys matching (repeatable)")
    g.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip keys matching (repeatable)")
    g.add_argument("--limit", type=int, help="only the first N selected objects")
    resume = g.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        dest="overwrite",
        action="store_false",
        default=False,
        help="skip objects whose output already exists (the default)",
    )
    resume.add_argument("--overwrite", dest="overwrite", action="store_true", help="redo existing outputs")
    g.add_argument("--dry-run", action="store_true", help="count objects, bytes and existing outputs; write nothing")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("outputs")
    g.add_argument(
        "--format",
        default="same",
        choices=["same", "jpeg", "png", "webp"],
        help="output format (default: same as the key's extension)",
    )
    g.add_argument("--quality", type=int, default=92, help="JPEG/WebP quality (default: 92)")
    g.add_argument("--max-pixels", type=int, help="fail images with more pixels than this")
    g.add_argument("--max-bytes", type=int, help="fail objects larger than this, without downloading them")
    g.add_argument("--report", help="report folder (local or s3://); default: DST/_reports")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_resource_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "resources",
        "The actors do all the pixel work (decode, network, compose, encode); fetch and upload tasks only wait on "
        "the store (0.25 CPU each). Defaults fit the cluster: with GPUs, 1 to (GPUs / --gpus-per-worker) actors of "
        "1 CPU and 2 threads, forward passes of 16 images; CPU-only, actors of 0.75 CPU (from half to all but one "
        "CPU; single-threaded unless fewer than the cores), one image per pass; I/O tasks of 16 objects.",
    )
    g.add_argument("--workers", type=workers, metavar="MIN,MAX", help="inference actors, autoscaled in between")
    g.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        help="GPUs per inference actor, e.g. 1 or 0.5 (default: 0 = CPU inference)",
    )
    g.add_argument("--cpus-per-worker", type=float, help="CPUs reserved per inference actor")
    g.add_argument("--torch-threads", type=int, help="torch threads per inference actor")
    g.add_argument("--cpus-per-task", type=float, help="CPUs reserved per fetch or upload task (default: 0.25)")
    g.add_argument(
        "--batch-size", type=int, help="images per forward pass, bucketed by size (default: 16 on GPUs, 1 on CPUs)"
    )
    g.add_argument(
        "--io-batch-size", type=int, help="objects per fetch/upload task (default: 16)"
    )
    g.add_argument(
        "--prefetch-batches", type=int, default=2, help="batches queued at each actor while it works (default: 2)"
    )
    g.add_argument("--io-threads", type=int, default=16, help="parallel transfers per task (default: 16)")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "archive",
        help="colorize every image (and film) under SRC into the same keys under DST, with Ray",
        description="Colorize an archive: SRC and DST are s3://bucket/prefix or local folders. Reruns resume: "
        "objects whose output exists are skipped. A report (one row per object) goes to DST/_reports.",
    )
    p.add_argument("src", metavar="SRC", help="s3://bucket/prefix or a local folder (read only)")
    p.add_argument("dst", metavar="DST", help="s3://bucket/prefix or a local folder")
    add_archive_options(p)
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace, src: str, dst: str, **overrides: Any) -> Any:
    """The ArchiveConfig the options describe, group by group as :func:`add_archive_options` lists them;
    ``overrides`` replace whole top-level fields (``colorize demo`` passes its own ``storage``)."""
    from model import ImageLimits
    from pipelines.archive import ArchiveConfig, Outputs, Resources, Selection, StorageOptions

    limits = {"max_bytes": args.max_bytes, "max_pixels": args.max_pixels}
    values: dict[str, Any] = dict(
        src=src,
        dst=dst,
        storage=StorageOptions(endpoint_url=args.endpoint_url, region_name=args.region),
        selection=Selection(
            manifest=args.manifest,
            include=tuple(args.include),
            exclude=tuple(args.exclude),
            limit=args.limit,
            overwrite=args.overwrite,
            dry_run=args.dry_run,
        ),
        outputs=Outputs(format=args.format, quality=args.quality, report=args.report, progress=not args.no_progress),
        resources=Resources(
            workers=args.workers,
            gpus_per_worker=args.gpus_per_worker,
            cpus_per_worker=args.cpus_per_worker,
            torch_threads=args.torch_threads,
            batch_size=args.batch_size,
            io_batch_size=args.io_batch_size,
            prefetch_batches=args.prefetch_batches,
            io_threads=args.io_threads,
            cpus_per_task=args.cpus_per_task,
        ),
        model=model_spec(args, limits=ImageLimits(**{k: v for k, v in limits.items() if v})),
    )
    values.update(overrides)
    return ArchiveConfig(**values)


def warn_if_untrained(config: Any) -> None:
    """The actors load the model; say here, once, when it is a random network."""
    from model.predictor import DEFAULT_WEIGHTS

    model = config.model
    if model.preset is not None or (model.weights is None and not DEFAULT_WEIGHTS.is_file()):
        print(
            "warning: no trained weights: using a randomly initialised network; colours will be meaningless",
            file=sys.stderr,
        )


def execute(config: Any, **kwargs: Any) -> int:
    """Run (or dry-run) and print the summary. Exit status: 0 all done, 1 some objects failed, 130 Ctrl-C
    (SIGINT), 143 SIGTERM; either signal writes the report so far and a summary marked interrupted."""
    from colorize.signals import stop_signals
    from pipelines.archive import ArchiveInterrupted, run_archive

    if not config.selection.dry_run:
        warn_if_untrained(config)
        from pipelines.archive.pipeline import ensure_ray

        ensure_ray()  # first: ray.init installs a SIGTERM handler of its own, which ours must replace
    try:
        with stop_signals(interrupt=True) as stop:
            summary = run_archive(config, **kwargs)
    except ArchiveInterrupted as interrupted:
        print(interrupted.summary.format(), file=sys.stderr)
        return stop.exit_status
    print(summary.format())
    return 1 if summary.failed else 0


def run(args: argparse.Namespace) -> int:
    try:
        config = build_config(args, args.src, args.dst)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return execute(config)
