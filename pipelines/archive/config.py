"""Typed configuration of an archive run, grouped as the ``colorize archive`` options are: storage, selection,
outputs, resources and the model (the one :class:`model.ModelSpec`; image limits in its predictor's ``limits``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from model import ImageLimits, ModelSpec
from pipelines.archive.keys import KeyFilter, check_format
from pipelines.archive.storage import Location, StorageOptions

REPORT_FOLDER = "_reports"  # default report location: DST/_reports/<run id>/


@dataclass(frozen=True)
class Selection:
    """Which objects the run processes."""

    manifest: str | None = None  # Parquet/CSV with a `key` column (and optional `size`) instead of listing
    include: tuple[str, ...] = ()  # glob patterns on keys relative to src; none = everything
    exclude: tuple[str, ...] = ()
    limit: int | None = None  # the first N selected objects, in listing order
    overwrite: bool = False  # False = resume: skip objects whose output already exists
    dry_run: bool = False  # count objects and bytes (and existing outputs); write nothing

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")

    @property
    def key_filter(self) -> KeyFilter:
        return KeyFilter(tuple(self.include), tuple(self.exclude))


@dataclass(frozen=True)
class Outputs:
    """What the run writes: the outputs' format, the report's folder, the progress bar."""

    format: str = "same"  # same | jpeg | png | webp
    quality: int = 92  # JPEG/WebP quality
    report: str | None = None  # report folder; default <dst>/_reports
    progress: bool = True  # a progress bar on stderr

    def __post_init__(self) -> None:
        check_format(self.format)
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in 1..100, got {self.quality}")


@dataclass(frozen=True)
class Resources:
    """Pool and batch sizes; None = chosen for the cluster by :meth:`resolve`."""

    workers: tuple[int, int] | None = None  # min, max inference actors (autoscaled in between)
    gpus_per_worker: float = 0.0  # 0 = CPU inference (a GPU request on a GPU-less cluster waits forever)
    cpus_per_worker: float | None = None  # CPUs reserved for each inference actor
    torch_threads: int | None = None  # intra-op threads per actor
    batch_size: int | None = None  # images per forward pass; default 16 on GPUs, 1 on CPUs (see forward_batch)
    io_batch_size: int | None = None  # objects per fetch or upload task
    prefetch_batches: int = 2  # batches queued at each actor while it works (max_tasks_in_flight_per_actor)
    io_threads: int = 16  # concurrent downloads / uploads within one task
    cpus_per_task: float | None = None  # CPUs reserved for each fetch or upload task (I/O: mostly waiting)

    def __post_init__(self) -> None:
        if self.workers is not None and not 1 <= self.workers[0] <= self.workers[1]:
            raise ValueError(f"workers must be MIN,MAX with 1 <= MIN <= MAX, got {self.workers}")
        if self.gpus_per_worker < 0 or (self.cpus_per_worker or 0) < 0 or (self.cpus_per_task or 1) <= 0:
            raise ValueError("resource requests must be >= 0 (cpus_per_task > 0)")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError("torch_threads must be >= 1")
        if self.io_threads < 1:
            raise ValueError("io_threads must be >= 1")
        for name in ("batch_size", "io_batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.prefetch_batches < 1:
            raise ValueError("prefetch_batches must be >= 1")

    @property
    def forward_batch(self) -> int:
        """Images per forward pass. GPUs want large batches; on CPUs a batch of 1 is fastest per image
        (measured: 4 images per pass cost 1.8x the time per image of single passes, as activations of
        several megapixel images no longer fit in cache)."""
        return self.batch_size or (16 if self.gpus_per_worker > 0 else 1)

    @property
    def actor_batch(self) -> int:
        """Rows per actor call: at least a decode task's worth, so the actor is not called per image."""
        return max(self.forward_batch, self.io_batch_size or 1)

    def resolve(self, cluster: dict[str, float]) -> Resources:
        """Fill the fields left at None for a cluster with these resources (``ray.cluster_resources()``).

        The actors do all the pixel work (decode, network, compose, encode); fetch and upload tasks only wait on
        the store, so they reserve a quarter of a CPU each. GPU inference: actors autoscale from 1 to as many as
        the GPUs hold (``gpus_per_worker`` each: 0.25 puts four on a GPU so that one's CPU work overlaps
        another's kernels), each reserving one CPU and 16 objects per task. CPU inference: actors reserving 0.75
        CPU each, from half up to all but one CPU (the listing's repartition step holds one CPU slot for the whole
        run, and the I/O tasks need room beside the actors), single-threaded (no synchronisation between threads)
        unless there are fewer actors than cores: on 2 CPUs, one actor with two threads.
        """
        cpus = max(1, int(cluster.get("CPU", 1)))
        if self.gpus_per_worker > 0:
            most = max(1, int(cluster.get("GPU", 0) / self.gpus_per_worker))
            workers, cpus_per_worker, threads, objects = (1, most), 1.0, 2, 16
        else:
            most = max(1, cpus - 1)
            # 16 objects per actor call: measured 1.03x the in-process loop on 2 CPUs, against 0.88x with 4
            workers, cpus_per_worker, threads, objects = (max(1, most // 2), most), 0.75, max(1, cpus // most), 16
        return dataclasses.replace(
            self,
            workers=self.workers or workers,
            io_batch_size=self.io_batch_size or objects,
            cpus_per_worker=cpus_per_worker if self.cpus_per_worker is None else self.cpus_per_worker,
            cpus_per_task=0.25 if self.cpus_per_task is None else self.cpus_per_task,
            torch_threads=self.torch_threads or threads,
        )

    @property
    def resolved(self) -> bool:
        fields = (self.workers, self.cpus_per_worker, self.cpus_per_task, self.torch_threads, self.io_batch_size)
        return None not in fields


@dataclass(frozen=True)
class ArchiveConfig:
    """Colorize every image (and video) under ``src`` into the same keys under ``dst``."""

    src: str  # s3://bucket/prefix or a local directory; never written to
    dst: str  # s3://bucket/prefix or a local directory; must not overlap src
    storage: StorageOptions = field(default_factory=StorageOptions)  # endpoint URL, region, retries
    selection: Selection = field(default_factory=Selection)
    outputs: Outputs = field(default_factory=Outputs)
    resources: Resources = field(default_factory=Resources)
    # weights/preset and the predictor's settings; its max_batch_size is replaced by forward_batch in the actors
    model: ModelSpec = field(default_factory=ModelSpec)

    def __post_init__(self) -> None:
        src, dst = Location.parse(self.src), Location.parse(self.dst)
        if src.overlaps(dst):
            raise ValueError(f"DST {dst.url} overlaps SRC {src.url}: outputs must never be written into SRC")
        if self.outputs.report is not None and Location.parse(self.outputs.report).overlaps(src):
            raise ValueError(f"the report folder {self.outputs.report} is inside SRC {src.url}")

    # ------------------------------------------------------------------------------------ derived
    @property
    def src_location(self) -> Location:
        return Location.parse(self.src)

    @property
    def dst_location(self) -> Location:
        return Location.parse(self.dst)

    @property
    def report_location(self) -> Location:
        return Location.parse(self.outputs.report) if self.outputs.report else self.dst_location.child(REPORT_FOLDER)

    @property
    def key_filter(self) -> KeyFilter:
        return self.selection.key_filter

    @property
    def limits(self) -> ImageLimits:
        """What the decoder (and, before any download, the fetch stage) accepts: the model's own limits."""
        return self.model.predictor.limits

    @property
    def forward_batch(self) -> int:
        return self.resources.forward_batch

    @property
    def actor_batch(self) -> int:
        return self.resources.actor_batch

    def resolve(self, cluster: dict[str, float]) -> ArchiveConfig:
        """This config with its resources fitted to the cluster (see :meth:`Resources.resolve`)."""
        return self.replace(resources=self.resources.resolve(cluster))

    @property
    def resolved(self) -> bool:
        return self.resources.resolved

    def colorizer_factory(self) -> ModelSpec:
        """A picklable factory of this run's predictor (called once in each inference actor): the model, with
        forward passes of ``forward_batch`` images."""
        return self.model.with_predictor(max_batch_size=self.forward_batch)

    def replace(self, **changes: Any) -> ArchiveConfig:
        return dataclasses.replace(self, **changes)
