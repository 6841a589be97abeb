"""The bulk job: list -> fetch (CPU tasks, I/O threads) -> colorize (actor pool: decode -> network -> compose
-> encode, on the actor's device) -> upload (CPU tasks, I/O threads) -> report rows streamed back to the driver.

The driver only builds the plan and counts report rows; keys are listed inside a read task and objects never
pass through it. Video objects are listed in the same pass but colorized afterwards, each whole, by a small
pool of video actors.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from model import Colorizer
from pipelines.archive.config import REPORT_FOLDER, ArchiveConfig
from pipelines.archive.keys import KeyListing, is_video, output_key, select
from pipelines.archive.manifest import iter_manifest
from pipelines.archive.report import ProgressBar, ReportWriter, Summary, new_run_id
from pipelines.archive.retry_tally import RetryTally
from pipelines.archive.stages import ColorizeWorker, StageContext, fetch, upload
from pipelines.archive.storage import ObjectInfo, StorageError, Store, open_store, with_tally
from pipelines.archive.video_stage import VideoWorker

log = logging.getLogger(__name__)


class ArchiveInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run. The report so far (and a summary marked interrupted) has been written; running the
    same job again finishes only what is left."""

    def __init__(self, summary: Summary) -> None:
        super().__init__("archive run interrupted")
        self.summary = summary


def _object_stream(config: ArchiveConfig, src: Store) -> Callable[[], Iterable[ObjectInfo]]:
    """A picklable callable that yields the run's objects: the store's listing or the manifest's keys."""
    if config.selection.manifest:
        return functools.partial(iter_manifest, config.selection.manifest, src.location, config.storage)
    return src.iter_objects


def _stage_context(config: ArchiveConfig, src: Store, dst: Store) -> StageContext:
    return StageContext(
        src=src,
        dst=dst,
        format=config.outputs.format,
        quality=config.outputs.quality,
        overwrite=config.selection.overwrite,
        limits=config.limits,
        io_threads=config.resources.io_threads,
    )


def ensure_ray() -> None:
    """Connect to the cluster in RAY_ADDRESS, or start a local one, unless Ray is already initialised."""
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False, logging_level=logging.WARNING)


@contextlib.contextmanager
def _quiet_ray_data() -> Iterator[None]:
    """Our own progress bar and summary replace Ray Data's per-operator bars and stats logs."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.enable_auto_log_stats, ctx.print_on_execution_start)
    ctx.enable_progress_bars, ctx.enable_auto_log_stats, ctx.print_on_execution_start = False, False, False
    console = [h for h in logging.getLogger("ray.data").handlers if "File" not in type(h).__name__]
    for handler in console:
        handler.addFilter(_drop_chatter)
    try:
        with warnings.catch_warnings():
            # Small archives give the actor pool fewer blocks than actors; nothing is wrong.
            warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")
            yield
    finally:
        ctx.enable_progress_bars, ctx.enable_auto_log_stats, ctx.print_on_execution_start = saved
        for handler in console:
            handler.removeFilter(_drop_chatter)


def _drop_chatter(record: logging.LogRecord) -> bool:
    """Drop Ray Data's notes about the bars and stats replaced here; keep its real warnings."""
    message = record.getMessage()
    return not (message.startswith("Progress bars") or "execution finished in" in message)


def _thread_env(threads: int) -> dict[str, Any]:
    return {"env_vars": {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}}


def build_image_dataset(config: ArchiveConfig, src: Store, dst: Store, factory: Callable[[], Colorizer]) -> Any:
    """The image pipeline as a lazy Ray Dataset of report rows (video keys come out with status ``video``)."""
    import ray
    from ray.data import ActorPoolStrategy

    ctx, res = _stage_context(config, src, dst), config.resources
    listing = KeyListing(_object_stream(config, src), config.key_filter, config.selection.limit, "all")
    assert config.resolved and res.workers is not None, "call config.resolve(ray.cluster_resources())"
    lo, hi = res.workers
    return (
        # Listing is I/O that waits on the store: it takes no CPU slot away from the stages.
        ray.data.read_datasource(listing, override_num_blocks=1, num_cpus=0)
        # A map task takes whole input blocks, and Ray would pack the listing into large ones: cut it into
        # blocks of io_batch_size keys so that downloads spread over the tasks and results stream back.
        .repartition(target_num_rows_per_block=res.io_batch_size or 1)
        .map_batches(fetch, fn_kwargs={"ctx": ctx}, batch_size=res.io_batch_size or 1, num_cpus=res.cpus_per_task)
        .map_batches(
            ColorizeWorker,
            fn_constructor_kwargs={
                "factory": factory,
                "quality": config.outputs.quality,
                "torch_threads": res.torch_threads,
            },
            batch_size=config.actor_batch,
            # Prefetch: while an actor works on one batch, the next ones' bytes are already on its node.
            compute=ActorPoolStrategy(min_size=lo, max_size=hi, max_tasks_in_flight_per_actor=res.prefetch_batches),
            num_cpus=res.cpus_per_worker,
            num_gpus=res.gpus_per_worker,
            # A runtime env of its own (the actor's thread count) also keeps Ray Data from fusing the I/O
            # stages into the actor, which would make the device wait on downloads and uploads.
            # Crashed actors are restarted and their batches retried (Ray Data's defaults for actor pools).
            runtime_env=_thread_env(res.torch_threads or 1),
        )
        .map_batches(upload, fn_kwargs={"ctx": ctx}, batch_size=res.io_batch_size or 1, num_cpus=res.cpus_per_task)
    )


def build_video_dataset(config: ArchiveConfig, src: Store, dst: Store, factory: Callable[[], Colorizer]) -> Any:
    """Video objects only, one per call, in a small actor pool (a film keeps a worker busy for minutes)."""
    import ray
    from ray.data import ActorPoolStrategy

    ctx, res = _stage_context(config, src, dst), config.resources
    listing = KeyListing(_object_stream(config, src), config.key_filter, config.selection.limit, "video")
    return (
        ray.data.read_datasource(listing, override_num_blocks=1, num_cpus=0)
        .repartition(target_num_rows_per_block=1)
        .map_batches(
            VideoWorker,
            fn_constructor_kwargs={"factory": factory, "ctx": ctx, "torch_threads": res.torch_threads},
            batch_size=1,
            compute=ActorPoolStrategy(min_size=1, max_size=res.workers[1] if res.workers else 1),
            num_cpus=res.cpus_per_worker,
            num_gpus=res.gpus_per_worker,
            runtime_env=_thread_env(res.torch_threads or 1),
        )
    )


def _drain(
    dataset: Any,
    summary: Summary,
    writer: ReportWriter,
    bar: ProgressBar,
    start: float,
    progress: Callable[[Summary], None] | None,
) -> int:
    """Stream report rows from ``dataset`` into the report and the summary; returns how many rows were
    deferred videos."""
    deferred = 0
    batches = iter(dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0))
    try:
        for table in batches:
            rows = table.to_pylist()
            for row in rows:
                if row["status"] == "video":
                    deferred += 1
                    continue
                summary.add(row)
                writer.add(row)
            if summary.first_row_seconds is None and summary.total:
                summary.first_row_seconds, summary.first_ok = time.perf_counter() - start, summary.ok
            summary.seconds = time.perf_counter() - start
            bar.update(summary, len(rows))
            if progress is not None:
                progress(summary)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # stops the streaming executor (and its actors) if we leave early
    return deferred


def run_archive(
    config: ArchiveConfig,
    colorizer_factory: Callable[[], Colorizer] | None = None,
    *,
    src_store: Store | None = None,
    dst_store: Store | None = None,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Colorize everything ``config`` selects and return the run's :class:`Summary`.

    ``colorizer_factory``: a picklable zero-argument callable building the predictor in each inference actor
    (default: ``config.colorizer_factory()``, the config's model). ``src_store``/``dst_store`` replace the
    stores named by ``config.src``/``config.dst`` (other backends, tests). ``progress`` is called with the
    running summary after every batch of report rows. Ctrl-C raises :class:`ArchiveInterrupted` after writing
    the report.
    """
    src = src_store or open_store(config.src_location, config.storage)
    dst = dst_store or open_store(config.dst_location, config.storage)
    if config.selection.dry_run:
        return dry_run(config, src_store=src, dst_store=dst)
    _check_source(config, src)
    factory = colorizer_factory or config.colorizer_factory()
    writer = _report_writer(config, dst)
    summary = Summary(run_id=writer.run_id, src=src.location.url, dst=dst.location.url, report=writer.url)
    ensure_ray()
    import ray

    # Storage retries anywhere in the cluster, for the summary; local folders have none (no actor then).
    remote = any(hasattr(store, "tally") for store in (src, dst, writer.store))
    tally = RetryTally.start(writer.run_id) if remote else RetryTally()
    src, dst, writer.store = with_tally(src, tally), with_tally(dst, tally), with_tally(writer.store, tally)
    config = config.resolve(ray.cluster_resources())
    _log_resources(config)
    bar = ProgressBar(config.outputs.progress)
    start = time.perf_counter()
    try:
        with _quiet_ray_data():
            videos = _drain(build_image_dataset(config, src, dst, factory), summary, writer, bar, start, progress)
            if videos:
                log.info("colorizing %d video objects", videos)
                _drain(build_video_dataset(config, src, dst, factory), summary, writer, bar, start, progress)
    except BaseException as exc:  # Ctrl-C, or the job failed as a whole: keep the report of what was done
        summary.interrupted = True
        summary.seconds = time.perf_counter() - start
        bar.close()
        with contextlib.suppress(Exception):
            _close(writer, summary, tally)
        if isinstance(exc, KeyboardInterrupt):
            raise ArchiveInterrupted(summary) from None
        raise
    bar.close()
    summary.seconds = time.perf_counter() - start
    _close(writer, summary, tally)
    return summary


def _report_writer(config: ArchiveConfig, dst: Store) -> ReportWriter:
    """The run's report: under DST's report folder, or the folder ``--report`` names."""
    run_id = new_run_id()
    if config.outputs.report is None:
        return ReportWriter(dst, REPORT_FOLDER + "/", run_id)
    return ReportWriter(open_store(config.report_location, config.storage), "", run_id)


def _log_resources(config: ArchiveConfig) -> None:
    lo, hi = config.resources.workers or (1, 1)
    log.info(
        "colorize actors: %s, each %g GPU, %g CPU, %d torch thread(s); %d image(s) per forward pass",
        lo if lo == hi else f"{lo} to {hi}",
        config.resources.gpus_per_worker,
        config.resources.cpus_per_worker,
        config.resources.torch_threads,
        config.forward_batch,
    )


def _close(writer: ReportWriter, summary: Summary, tally: RetryTally) -> None:
    """Final report part and summary.json, with the run's storage retries."""
    try:
        summary.retries = tally.totals()
    finally:
        tally.stop()
    writer.close(summary)  # its own writes may retry too; they are not in the summary they write


def _check_source(config: ArchiveConfig, src: Store) -> None:
    """Fail fast, in the driver, on a missing bucket, folder or manifest or on bad credentials (one listing
    request) rather than inside the cluster."""
    stream = iter(_object_stream(config, src)())
    try:
        next(stream, None)
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot read {config.selection.manifest or src.location.url}: {exc}") from exc
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _chunks(items: Iterable[ObjectInfo], size: int) -> Iterator[list[ObjectInfo]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def dry_run(config: ArchiveConfig, *, src_store: Store | None = None, dst_store: Store | None = None) -> Summary:
    """Count what a run would do, without Ray and without writing: objects and bytes selected, videos,
    outputs that already exist (one HEAD per object, ``io_threads`` at a time) and objects that would fail
    unread (empty, or over the model's ``limits.max_bytes``). Streams the listing, so memory stays flat."""
    src = src_store or open_store(config.src_location, config.storage)
    dst = dst_store or open_store(config.dst_location, config.storage)
    summary = Summary(src=src.location.url, dst=dst.location.url, dry_run=True)
    start = time.perf_counter()

    def exists(obj: ObjectInfo) -> bool:
        return not config.selection.overwrite and dst.size(output_key(obj.key, config.outputs.format)[0]) is not None

    chosen = select(_object_stream(config, src)(), config.key_filter, config.selection.limit, "all")
    with ThreadPoolExecutor(max_workers=config.resources.io_threads) as pool:
        for chunk in _chunks(chosen, 256):
            for obj, done in zip(chunk, pool.map(exists, chunk), strict=True):
                summary.total += 1
                summary.bytes_in += max(obj.size, 0)
                summary.videos += is_video(obj.key)
                if done:
                    summary.would_skip += 1
                elif not is_video(obj.key) and (obj.size == 0 or obj.size > config.limits.max_bytes):
                    summary.would_fail += 1
    summary.seconds = time.perf_counter() - start
    return summary
