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
from torch.utils.data import DataLoader, WeightedRandomSampler
from tqdm import tqdm

from model.checkpoint import load_checkpoint, save_checkpoint, update_card
from model.device import resolve_device
from model.families import build_model, get_family
from model.quantize import ABQuantizer
from model.training.augment import ToneJitter
from model.training.card import build_card, card_markdown
from model.training.config import TrainConfig
from model.training.data import DataSource, PhotoDataset, chroma_weights, lab_batch, load_source, source_weights
from model.training.losses import Batch, FamilyLoss, build_loss
from model.training.state import TrainingProgress, load_state, save_state
from model.training.stats import DataStats, compute_stats
from model.training.warm import warm_start

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


@dataclass
class _Session:
    """Everything one training run holds between its steps (what ``state.safetensors`` saves and restores)."""

    cfg: TrainConfig
    model: nn.Module
    loss_fn: FamilyLoss
    optimizer: torch.optim.Optimizer
    samples: list[Any]
    class_names: tuple[str, ...]
    teacher: torch.Tensor | None
    tone: ToneJitter
    device: torch.device
    progress: TrainingProgress
    out: Path
    stats: DataStats
    meta: dict[str, Any]

    def save(self) -> None:
        save_state(
            self.out / STATE_FILE,
            model=self.model,
            loss=self.loss_fn,
            optimizer=self.optimizer,
            stats=self.stats,
            progress=self.progress,
            meta=self.meta,
        )


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) one model as configured; returns the exported checkpoint and its card."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    source = load_source(cfg.data)
    session = _start(cfg, source, out, resolve_device(cfg.device))
    _run(session)
    card = build_card(
        cfg=cfg,
        family=cfg.family,
        model=session.model,
        source=source,
        train_count=len(session.samples),
        stats=session.stats,
        progress=session.progress,
        device=session.device,
        class_names=session.class_names,
        loss_text=session.loss_fn.describe(),
    )
    net_cfg = get_family(cfg.family).config_from_dict(session.meta["model_config"])
    path = save_checkpoint(
        out / MODEL_FILE, session.model, family=cfg.family, config=net_cfg, card=card, dtype=torch.float16
    )
    card = _calibrate_export(cfg, path, source, session.device) or card
    card = _evaluate_export(cfg, path, source, session.stats, session.device) or card
    (out / CARD_FILE).write_text(card_markdown(card))
    return TrainResult(path, session.progress, card)


def _training_samples(cfg: TrainConfig, source: DataSource) -> tuple[list[Any], str]:
    """The split's samples (a seeded subset with ``max_train_images``) and a tag naming the subset."""
    samples = source.split(cfg.split)
    if not samples:
        raise ValueError(f"{cfg.data}: no images in split {cfg.split!r}")
    if cfg.max_train_images and cfg.max_train_images < len(samples):
        keep = sorted(random.Random(cfg.seed).sample(range(len(samples)), cfg.max_train_images))
        samples = [samples[i] for i in keep]
        return samples, f"-n{len(samples)}s{cfg.seed}"
    return samples, ""


def _start(cfg: TrainConfig, source: DataSource, out: Path, device: torch.device) -> _Session:
    """A new run, or the one saved in ``out`` when resuming: model, loss, optimizer, data statistics."""
    samples, subset = _training_samples(cfg, source)
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
        if cfg.confidence:
            net_cfg = net_cfg.replace(confidence=cfg.confidence)
        if cfg.distribution:
            net_cfg = net_cfg.replace(distribution=cfg.distribution)
        if cfg.prior_train_blocks:
            net_cfg = net_cfg.replace(prior_train_blocks=cfg.prior_train_blocks)
        name = f"stats-{source.digest[:12]}-{cfg.split}{subset}-q{ABQuantizer(10.0).num_bins}.safetensors"
        stats, progress = cached_stats(samples, cfg, cache / name, device), TrainingProgress()
    model = build_model(cfg.family, net_cfg)
    init_pretrained = get_family(cfg.family).init_pretrained
    if resumed is None and init_pretrained is not None:
        # e.g. the prior's ImageNet backbone (from its package, or --pretrained-from); a resume has its own
        init_pretrained(model, load_checkpoint(cfg.pretrained_from).state_dict if cfg.pretrained_from else None)
    if resumed is None and cfg.init_from:
        warm_start(model, cfg.init_from)
    if cfg.train_only:
        for name, param in model.named_parameters():
            param.requires_grad_(param.requires_grad and name.startswith(cfg.train_only))
    model = model.to(device)
    teacher = _teacher(cfg, samples, cache / f"teacher-{source.digest[:12]}-{cfg.split}{subset}", device)
    loss_fn = build_loss(cfg.family, model, stats, cfg.loss, _teacher_classes(teacher)).to(device)
    optimizer = torch.optim.AdamW(_param_groups(cfg, model, loss_fn), lr=cfg.lr, weight_decay=cfg.weight_decay)
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
    tone = ToneJitter(cfg.tone_jitter)
    return _Session(
        cfg, model, loss_fn, optimizer, samples, class_names, teacher, tone, device, progress, out, stats, meta
    )


def _param_groups(cfg: TrainConfig, model: nn.Module, loss_fn: nn.Module) -> list[dict[str, Any]]:
    """What trains, in optimizer groups: everything at the learning rate, and a fine-tuned pretrained
    backbone (``prior.``) at ``prior_lr_scale`` times it (its ``lr_scale``, applied every step)."""
    named = [*model.named_parameters(), *(("loss." + n, p) for n, p in loss_fn.named_parameters())]
    backbone = [p for n, p in named if p.requires_grad and n.startswith("prior.")]
    rest = [p for n, p in named if p.requires_grad and not n.startswith("prior.")]
    groups: list[dict[str, Any]] = [{"params": rest, "lr_scale": 1.0}]
    if backbone:
        groups.append({"params": backbone, "lr_scale": cfg.prior_lr_scale})
    return groups


def _teacher(cfg: TrainConfig, samples: list[Any], stem: Path, device: torch.device) -> torch.Tensor | None:
    """The teacher's soft ImageNet labels for every sample (cached), or None without ``--teacher``."""
    if not cfg.teacher:
        return None
    from model.training.teacher import soft_labels

    path = stem.with_name(f"{stem.name}-{cfg.teacher_size}px.safetensors")
    return soft_labels(samples, path, device=device, workers=cfg.workers, size=cfg.teacher_size, progress=cfg.progress)


def _teacher_classes(teacher: torch.Tensor | None) -> int:
    if teacher is None:
        return 0
    from model.training.teacher import IMAGENET_CLASSES

    return IMAGENET_CLASSES


def _calibrate_export(cfg: TrainConfig, path: Path, source: DataSource, device: torch.device) -> dict[str, Any] | None:
    """Calibrate the exported checkpoint's chroma gain on training photos (never the eval split)."""
    if cfg.calibrate_images <= 0:
        return None
    from model.calibration import calibrate_checkpoint

    photos = [s.path for s in source.split(cfg.split)]
    gain = calibrate_checkpoint(
        path,
        photos,
        split=cfg.split,
        limit=cfg.calibrate_images,
        max_psnr_drop=cfg.max_psnr_drop,
        max_side=cfg.eval_max_side,
        seed=cfg.seed,
        device=str(device),
    ).gain
    log.info("chroma gain %.2f (calibrated on %d %s photos)", gain, cfg.calibrate_images, cfg.split)
    return load_checkpoint(path).card


def _loader(session: _Session) -> DataLoader:
    cfg = session.cfg
    dataset = PhotoDataset(session.samples, cfg.size, session.class_names, augment=True)
    sampler = None
    if cfg.source_exponent != 1.0 or cfg.chroma_exponent:  # re-weighted; an epoch still draws len(dataset) photos
        weights = source_weights(session.samples, cfg.source_exponent)
        if cfg.chroma_exponent:
            start = time.perf_counter()
            vivid = chroma_weights(session.samples, cfg.chroma_exponent)
            weights = [w * v for w, v in zip(weights, vivid, strict=True)]
            log.info("photos weighted by chroma ** %g in %.0f s", cfg.chroma_exponent, time.perf_counter() - start)
        sampler = WeightedRandomSampler(weights, num_samples=len(dataset), replacement=True)
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        drop_last=len(dataset) >= cfg.batch_size,
        num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0,
        pin_memory=session.device.type == "cuda",
    )


def _step(session: _Session, rgb: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> tuple[float, Any]:
    """One optimisation step; returns the learning rate used and the loss result."""
    cfg, device, teacher = session.cfg, session.device, session.teacher
    lightness, ab = lab_batch(rgb, device)
    lightness = session.tone(lightness)
    batch = Batch(lightness, ab, labels.to(device), teacher[index].to(device) if teacher is not None else None)
    lr = cfg.lr * _lr_factor(cfg, session.progress)
    for group in session.optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with autocast:
        result = session.loss_fn(session.model, batch)
    session.optimizer.zero_grad(set_to_none=True)
    result.total.backward()
    params = [p for group in session.optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    session.optimizer.step()
    return lr, result


def _run(session: _Session) -> None:
    cfg, progress = session.cfg, session.progress
    _train_mode(session.model, cfg.train_only)
    bar = tqdm(total=cfg.max_steps, initial=progress.step, unit="step", disable=not cfg.progress, desc=cfg.family)
    last_save = time.monotonic()
    window_images, window_start = 0, time.monotonic()
    log_file = (session.out / LOG_FILE).open("a")
    try:
        batches = _batches(_loader(session))
        while not _finished(cfg, progress):
            start = time.monotonic()
            rgb, labels, index = next(batches)
            lr, result = _step(session, rgb, labels, index)
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
                _log_step(log_file, progress, lr, result, rate)
            if time.monotonic() - last_save > cfg.checkpoint_minutes * 60:
                session.save()
                last_save = time.monotonic()
    finally:
        bar.close()
        log_file.close()
        session.save()  # also on interruption, so --resume loses at most the current step
    session.model.eval()


def _train_mode(model: nn.Module, only: str | None) -> None:
    """Training mode for what trains; with ``only``, the frozen rest stays in eval mode (batch-norm
    statistics unchanged)."""
    if not only:
        model.train()
        return
    model.eval()
    for name, module in model.named_modules():
        if name.startswith(only):
            module.train()


def _log_step(log_file: Any, progress: TrainingProgress, lr: float, result: Any, rate: float) -> None:
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
