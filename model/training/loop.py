"""The training loop: any registered model family, its registered loss, a time budget, resumable state.

``train(TrainConfig(...))`` writes into ``cfg.out``:

* ``state.safetensors``: everything needed to resume (``resume=True``), written every few minutes and at the end;
* ``model.safetensors``: the fp16 checkpoint with its model card (config, recipe, data hash, time, eval table);
* ``MODEL_CARD.md``: the card, readable;
* ``train_log.jsonl``: one line per ``log_every`` steps (loss parts, images/s, learning rate).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from model.baselines import ABQuantizer
from model.checkpoint import load_checkpoint, save_checkpoint, update_card
from model.device import resolve_device
from model.families import build_model, get_family
from model.training.card import build_card, card_markdown
from model.training.config import TrainConfig
from model.training.data import DataSource, PhotoDataset, lab_batch, load_source
from model.training.losses import Batch, FamilyLoss, build_loss
from model.training.state import TrainingProgress, load_state, save_state
from model.training.stats import DataStats, compute_stats

log = logging.getLogger(__name__)

STATE_FILE = "state.safetensors"
MODEL_FILE = "model.safetensors"
LOG_FILE = "train_log.jsonl"
CARD_FILE = "MODEL_CARD.md"
STATS_SIZE = 128  # data statistics use central squares of this side, whatever the crop size


@dataclass
class TrainResult:
    checkpoint: Path
    progress: TrainingProgress
    card: dict[str, Any]


def model_config(family: str, preset: str, class_names: tuple[str, ...]) -> Any:
    """The family's preset, with the classifier sized to the data's labels when the family has one."""
    cfg = get_family(family).presets.get(preset)
    if cfg is None:
        raise ValueError(
            f"family {family!r} has no preset {preset!r}; choose from {sorted(get_family(family).presets)}"
        )
    names = {f.name for f in fields(cfg)}
    if class_names and {"num_classes", "class_names"} <= names:
        cfg = cfg.replace(num_classes=len(class_names), class_names=class_names)
    return cfg


def cached_stats(samples: list[Any], cfg: TrainConfig, path: Path, device: torch.device) -> DataStats:
    """Data statistics, computed once per data set, split and crop size."""
    if path.is_file():
        stored = load_file(str(path))
        return DataStats(
            (float(stored["mean_ab"][0]), float(stored["mean_ab"][1])), stored["ab_histogram"], int(stored["images"])
        )
    stats = compute_stats(samples, STATS_SIZE, device=device, workers=cfg.workers, progress=cfg.progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        "mean_ab": torch.tensor(stats.mean_ab, dtype=torch.float64),
        "ab_histogram": stats.ab_histogram,
        "images": torch.tensor(stats.images),
    }
    save_file(tensors, str(path))
    return stats


def _batches(loader: DataLoader) -> Iterator[Any]:
    while True:  # epochs without end; the budget decides when to stop
        yield from loader


def _lr_factor(cfg: TrainConfig, progress: TrainingProgress) -> float:
    warm = min(1.0, (progress.step + 1) / max(cfg.warmup_steps, 1))
    done = progress.seconds / (cfg.minutes * 60.0)
    if cfg.max_steps:
        done = max(done, progress.step / cfg.max_steps)
    return warm * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0))))


def _finished(cfg: TrainConfig, progress: TrainingProgress) -> bool:
    out_of_time = progress.seconds >= cfg.minutes * 60.0
    return out_of_time or (cfg.max_steps is not None and progress.step >= cfg.max_steps)


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) one model as configured; returns the exported checkpoint and its card."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    source = load_source(cfg.data)
    samples = source.split(cfg.split)
    if not samples:
        raise ValueError(f"{cfg.data}: no images in split {cfg.split!r}")
    subset = ""
    if cfg.max_train_images and cfg.max_train_images < len(samples):
        keep = sorted(random.Random(cfg.seed).sample(range(len(samples)), cfg.max_train_images))
        samples = [samples[i] for i in keep]
        subset = f"-n{len(samples)}s{cfg.seed}"
    class_names = source.class_names()
    cache = Path(cfg.cache_dir) if cfg.cache_dir else out

    resumed = load_state(out / STATE_FILE) if cfg.resume else None
    if resumed is not None:
        if resumed.meta["family"] != cfg.family:
            raise ValueError(f"{out} holds a {resumed.meta['family']} run, not {cfg.family}")
        if resumed.meta["data_sha256"] != source.digest:
            log.warning("the data changed since this run started (manifest hash differs)")
        stats, progress = resumed.stats, resumed.progress
        net_cfg = get_family(cfg.family).config_from_dict(resumed.meta["model_config"])
        class_names = tuple(resumed.meta["class_names"])
    else:
        net_cfg = model_config(cfg.family, cfg.preset, class_names)
        stats = cached_stats(
            samples,
            cfg,
            cache / f"stats-{source.digest[:12]}-{cfg.split}{subset}-q{ABQuantizer(10.0).num_bins}.safetensors",
            device,
        )
        progress = TrainingProgress()

    model = build_model(cfg.family, net_cfg)
    init_pretrained = get_family(cfg.family).init_pretrained
    if resumed is None and init_pretrained is not None:
        init_pretrained(model)  # e.g. the prior family's ImageNet backbone; a resume restores its own copy
    model = model.to(device)
    teacher = None
    if cfg.teacher:
        from model.training.teacher import IMAGENET_CLASSES, soft_labels

        name = f"teacher-{source.digest[:12]}-{cfg.split}{subset}-{cfg.teacher_size}px.safetensors"
        teacher = soft_labels(
            samples, cache / name, device=device, workers=cfg.workers, size=cfg.teacher_size, progress=cfg.progress
        )
    loss_fn = build_loss(cfg.family, model, stats, cfg.loss, IMAGENET_CLASSES if teacher is not None else 0)
    loss_fn = loss_fn.to(device)
    params = [p for p in (*model.parameters(), *loss_fn.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if resumed is not None:
        model.load_state_dict(resumed.module_state("model."))
        loss_fn.load_state_dict(resumed.module_state("loss."))
        resumed.restore_optimizer(optimizer)
        log.info("resumed %s at step %d (%.1f min trained)", out, progress.step, progress.seconds / 60)

    meta = {
        "family": cfg.family,
        "model_config": net_cfg.to_dict(),
        "class_names": list(class_names),
        "data_sha256": source.digest,
        "train_config": cfg.to_dict(),
    }
    _run(cfg, model, loss_fn, optimizer, samples, class_names, teacher, device, progress, out, stats, meta)
    card = build_card(
        cfg=cfg,
        family=cfg.family,
        model=model,
        source=source,
        train_count=len(samples),
        stats=stats,
        progress=progress,
        device=device,
        class_names=class_names,
        loss_text=loss_fn.describe(),
    )
    path = save_checkpoint(out / MODEL_FILE, model, family=cfg.family, config=net_cfg, card=card, dtype=torch.float16)
    if cfg.calibrate_images > 0:
        from model.calibration import calibrate_checkpoint

        photos = [s.path for s in source.split(cfg.split)]
        gain = calibrate_checkpoint(
            path, photos, split=cfg.split, limit=cfg.calibrate_images, max_psnr_drop=cfg.max_psnr_drop,
            max_side=cfg.eval_max_side, seed=cfg.seed, device=str(device),
        ).gain
        log.info("chroma gain %.2f (calibrated on %d %s photos)", gain, cfg.calibrate_images, cfg.split)
        card = load_checkpoint(path).card
    card = _evaluate_export(cfg, path, source, stats, device) or card
    (out / CARD_FILE).write_text(card_markdown(card))
    return TrainResult(path, progress, card)


def _run(
    cfg: TrainConfig,
    model: nn.Module,
    loss_fn: FamilyLoss,
    optimizer: torch.optim.Optimizer,
    samples: list[Any],
    class_names: tuple[str, ...],
    teacher: torch.Tensor | None,
    device: torch.device,
    progress: TrainingProgress,
    out: Path,
    stats: DataStats,
    meta: dict[str, Any],
) -> None:
    dataset = PhotoDataset(samples, cfg.size, class_names, augment=True)
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=len(dataset) >= cfg.batch_size,
        num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0,
        pin_memory=device.type == "cuda",
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    def checkpoint() -> None:
        save_state(
            out / STATE_FILE, model=model, loss=loss_fn, optimizer=optimizer, stats=stats, progress=progress, meta=meta
        )

    params = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    bar = tqdm(total=cfg.max_steps, initial=progress.step, unit="step", disable=not cfg.progress, desc=cfg.family)
    last_save = time.monotonic()
    window_images, window_start = 0, time.monotonic()
    log_file = (out / LOG_FILE).open("a")
    try:
        batches = _batches(loader)
        while not _finished(cfg, progress):
            start = time.monotonic()
            rgb, labels, index = next(batches)
            lightness, ab = lab_batch(rgb, device)
            batch = Batch(lightness, ab, labels.to(device), teacher[index].to(device) if teacher is not None else None)
            lr = cfg.lr * _lr_factor(cfg, progress)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast:
                result = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            result.total.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            progress.step += 1
            progress.images += rgb.shape[0]
            progress.seconds += time.monotonic() - start
            window_images += rgb.shape[0]
            bar.update(1)
            if progress.step % cfg.log_every == 0 or _finished(cfg, progress):
                rate = window_images / max(time.monotonic() - window_start, 1e-9)
                window_images, window_start = 0, time.monotonic()
                left = max(0.0, cfg.minutes * 60 - progress.seconds)
                bar.set_postfix(loss=f"{result.total.item():.4f}", img_s=f"{rate:.1f}", left=f"{left / 60:.1f}m")
                record = {
                    "step": progress.step,
                    "images": progress.images,
                    "seconds": round(progress.seconds, 1),
                    "lr": lr,
                    "loss": result.total.item(),
                    **result.parts,
                    "images_per_s": round(rate, 2),
                }
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
            if time.monotonic() - last_save > cfg.checkpoint_minutes * 60:
                checkpoint()
                last_save = time.monotonic()
    finally:
        bar.close()
        log_file.close()
        checkpoint()  # also on interruption, so --resume loses at most the current step
    model.eval()


def _evaluate_export(
    cfg: TrainConfig, path: Path, source: DataSource, stats: DataStats, device: torch.device
) -> dict[str, Any] | None:
    """Evaluate the exported (fp16) checkpoint on ``cfg.eval_split`` and store the table in its card."""
    if cfg.eval_split is None:
        return None
    eval_samples = [s for s in source.samples if s.split == cfg.eval_split]
    if not eval_samples:
        return None
    from model.config import PredictorConfig
    from model.evaluation import evaluate
    from model.photos import read_samples
    from model.predictor import Colorizer

    colorizer = Colorizer.from_pretrained(path, config=PredictorConfig(device=str(device)))
    report = evaluate(colorizer, read_samples(eval_samples, cfg.eval_max_side), stats.mean_ab)
    evaluation = {
        "split": cfg.eval_split,
        "images": len(eval_samples),
        "max_side": cfg.eval_max_side,
        **report,
        "command": f"colorize eval --data {cfg.data} --split {cfg.eval_split} --weights {path}",
    }
    return update_card(path, {"eval": evaluation})
