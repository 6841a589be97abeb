"""Typed configuration of an archive run; one field per ``colorize archive`` option."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from model import Colorizer, ImageLimits, PredictorConfig
from pipelines.archive.keys import KeyFilter, check_format
from pipelines.archive.storage import Location, StorageOptions

REPORT_FOLDER = "_reports"  # default report location: DST/_reports/<run id>/


@dataclass(frozen=True)
class ArchiveConfig:
    """Colorize every image (and video) under ``src`` into the same keys under ``dst``."""

    src: str  # s3://bucket/prefix or a local directory; never written to
    dst: str  # s3://bucket/prefix or a local directory; must not overlap src
    storage: StorageOptions = field(default_factory=StorageOptions)  # endpoint URL, region, retries
    # --- what to process ---------------------------------------------------------------------------
    manifest: str | None = None  # Parquet/CSV with a `key` column (and optional `size`) instead of listing
    include: tuple[str, ...] = ()  # glob patterns on keys relative to src; none = everything
    exclude: tuple[str, ...] = ()
    limit: int | None = None  # the first N selected objects, in listing order
    overwrite: bool = False  # False = resume: skip objects whose output already exists
    dry_run: bool = False  # count objects and bytes (and existing outputs); write nothing
    # --- outputs -----------------------------------------------------------------------------------
    format: str = "same"  # same | jpeg | png | webp
    quality: int = 92  # JPEG/WebP quality
    report: str | None = None  # report folder; default <dst>/_reports
    # --- the model (what `colorize/options.py` offers every command) ---------------------------------
    weights: str | None = None  # checkpoint; default: the shipped one
    preset: str | None = None  # an untrained preset instead (tests, benchmarks)
    device: str = "auto"
    precision: str = "auto"
    upsample: str = "bilinear"  # chroma upsampling at compose time: bilinear | guided
    max_bytes: int = ImageLimits().max_bytes  # larger objects fail with ImageTooLargeError unread
    max_pixels: int = ImageLimits().max_pixels
    # --- resources ---------------------------------------------------------------------------------
    workers: tuple[int, int] = (1, 1)  # min, max inference actors (autoscaled in between)
    gpus_per_worker: float = 0.0  # 0 = CPU inference (a GPU request on a GPU-less cluster waits forever)
    cpus_per_worker: float = 1.0  # CPUs reserved for each inference actor
    torch_threads: int | None = None  # intra-op threads per actor; default: max(1, cpus_per_worker)
    batch_size: int = 16  # images per inference call (bucketed by size inside the predictor)
    io_batch_size: int = 8  # objects per fetch+decode and compose+encode+upload task
    io_threads: int = 16  # concurrent downloads / uploads within one task
    cpus_per_task: float = 1.0  # CPUs reserved for each fetch+decode or compose+encode+upload task
    progress: bool = True  # a progress bar on stderr

    def __post_init__(self) -> None:
        check_format(self.format)
        src, dst = Location.parse(self.src), Location.parse(self.dst)
        if src.overlaps(dst):
            raise ValueError(f"DST {dst.url} overlaps SRC {src.url}: outputs must never be written into SRC")
        if self.report is not None and Location.parse(self.report).overlaps(src):
            raise ValueError(f"the report folder {self.report} is inside SRC {src.url}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in 1..100, got {self.quality}")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")
        lo, hi = self.workers
        if not 1 <= lo <= hi:
            raise ValueError(f"workers must be MIN,MAX with 1 <= MIN <= MAX, got {lo},{hi}")
        if self.gpus_per_worker < 0 or self.cpus_per_worker < 0 or self.cpus_per_task <= 0:
            raise ValueError("resource requests must be >= 0 (cpus_per_task > 0)")
        for name in ("batch_size", "io_batch_size", "io_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        self.predictor_config()  # validates device, precision and upsample

    # ------------------------------------------------------------------------------------ derived
    @property
    def src_location(self) -> Location:
        return Location.parse(self.src)

    @property
    def dst_location(self) -> Location:
        return Location.parse(self.dst)

    @property
    def report_location(self) -> Location:
        return Location.parse(self.report) if self.report else self.dst_location.child(REPORT_FOLDER)

    @property
    def key_filter(self) -> KeyFilter:
        return KeyFilter(tuple(self.include), tuple(self.exclude))

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=self.max_bytes, max_pixels=self.max_pixels)

    @property
    def actor_threads(self) -> int:
        return self.torch_threads or max(1, int(round(self.cpus_per_worker)))

    def predictor_config(self) -> PredictorConfig:
        return PredictorConfig(
            device=self.device,
            precision=self.precision,
            max_batch_size=self.batch_size,
            upsample=self.upsample,
            limits=self.limits,
        )

    def colorizer_factory(self) -> Callable[[], Colorizer]:
        """A picklable function that builds this run's predictor (called once in each inference actor)."""
        return ModelSpec(self.weights, self.preset, self.predictor_config())

    def replace(self, **changes: Any) -> ArchiveConfig:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ModelSpec:
    """Weights + preset + predictor settings: enough to rebuild the same predictor in any process."""

    weights: str | None = None
    preset: str | None = None
    config: PredictorConfig = field(default_factory=PredictorConfig)

    def __call__(self) -> Colorizer:
        return Colorizer.from_pretrained(self.weights, preset=self.preset, config=self.config)
