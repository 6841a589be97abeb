"""The model card every exported checkpoint carries, and the command that reproduces it."""

from __future__ import annotations

import platform
import shlex
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.network import count_parameters
from model.training.config import TrainConfig
from model.training.data import DataSource
from model.training.state import TrainingProgress
from model.training.stats import DataStats

ARCHITECTURES = {
    "fusion": "Iizuka et al. 2016 global + local fusion CNN (low/mid-level, global and fusion networks, "
    "colourisation decoder, scene classifier)",
    "prior": "Iizuka et al. 2016 fusion CNN with a pretrained global prior fused at the fusion layer "
    "(EfficientNet-Lite0 ImageNet embedding of the greyscale photo, as in Baldassarre et al. 2017)",
    "regression": "VGG-16-style encoder-decoder regressing a*b* (comparison baseline)",
    "classification": "VGG-16-style encoder with Zhang et al. 2016's quantised a*b* head (class rebalancing, "
    "annealed-mean decoding; comparison baseline)",
}
AUGMENTATION = "random square crops covering 50-100% of the shorter side, resized; horizontal flips"


def augmentation_text(cfg: TrainConfig) -> str:
    text = AUGMENTATION
    if cfg.tone_jitter:
        from model.training.augment import ToneJitter

        text = f"{text}; {ToneJitter(cfg.tone_jitter).describe()}"
    if cfg.source_exponent != 1.0:
        text = f"{text}; each source drawn in proportion to (its photos) ** {cfg.source_exponent:g}"
    if cfg.chroma_exponent:
        text = f"{text}; each photo drawn in proportion to (its mean chroma + 1) ** {cfg.chroma_exponent:g}"
    return text


def optimizer_text(cfg: TrainConfig) -> str:
    text = (
        f"AdamW (lr {cfg.lr:g}, weight decay {cfg.weight_decay:g}), {cfg.warmup_steps} warm-up steps, cosine decay "
        f"over the time budget, gradient clipping at {cfg.grad_clip:g}"
    )
    if cfg.prior_train_blocks:
        text += (
            f"; the backbone's last {cfg.prior_train_blocks} blocks and head fine-tuned at "
            f"{cfg.prior_lr_scale:g} x the lr (batch-norm statistics ImageNet's)"
        )
    return text


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA, bf16 autocast)"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"CPU: {cpu}, {threads} torch thread{'s' if threads != 1 else ''} (fp32)"


def reproduce_command(cfg: TrainConfig) -> str:
    """The ``colorize train`` command line that runs this configuration again."""
    default = TrainConfig(data="", out="")
    args = ["colorize", "train", "--data", cfg.data, "--out", cfg.out]
    flags = {
        "family": "--family",
        "preset": "--preset",
        "size": "--size",
        "batch_size": "--batch-size",
        "minutes": "--minutes",
        "max_steps": "--max-steps",
        "lr": "--lr",
        "warmup_steps": "--warmup-steps",
        "init_from": "--init-from",
        "tone_jitter": "--tone-jitter",
        "source_exponent": "--source-exponent",
        "chroma_exponent": "--chroma-exponent",
        "confidence": "--confidence",
        "distribution": "--distribution",
        "train_only": "--train-only",
        "prior_train_blocks": "--prior-train-blocks",
        "prior_lr_scale": "--prior-lr-scale",
        "pretrained_from": "--pretrained-from",
        "seed": "--seed",
        "name": "--name",
        "data_name": "--data-name",
        "max_train_images": "--max-train-images",
        "teacher_size": "--teacher-size",
    }
    for key, flag in flags.items():
        value = getattr(cfg, key)
        if value != getattr(default, key) or key in {"family", "preset", "minutes"}:
            args += [flag, str(value)]
    if cfg.teacher:
        args.append("--teacher")
    if cfg.loss.chroma_weight != default.loss.chroma_weight:
        args += ["--chroma-weight", str(cfg.loss.chroma_weight)]
    if cfg.loss.rebalance_lambda != default.loss.rebalance_lambda:
        args += ["--rebalance-lambda", str(cfg.loss.rebalance_lambda)]
    return shlex.join(args)


def build_card(
    *,
    cfg: TrainConfig,
    family: str,
    model: nn.Module,
    source: DataSource,
    train_count: int,
    stats: DataStats,
    progress: TrainingProgress,
    device: torch.device,
    class_names: tuple[str, ...],
    loss_text: str,
) -> dict[str, Any]:
    minutes = progress.seconds / 60.0
    data_name = cfg.data_name or f"{source.root.name} ({len(source.samples):,} photos)"
    return {
        "name": cfg.name or f"{family}-{cfg.preset}-{source.root.name}",
        "trained": True,
        "family": family,
        "preset": cfg.preset,
        "architecture": ARCHITECTURES.get(family, family),
        "parameters": count_parameters(model),
        "data": {
            "name": data_name,
            "split": cfg.split,
            "train_images": train_count,
            "labelled_classes": list(class_names),
            f"{source.kind}_sha256": source.digest,
        },
        "recipe": {
            "optimizer": optimizer_text(cfg),
            "loss": loss_text,
            "augmentation": augmentation_text(cfg),
            "size": cfg.size,
            "batch_size": cfg.batch_size,
            "steps": progress.step,
            "images_seen": progress.images,
            "epochs": round(progress.images / max(train_count, 1), 2),
            "teacher": "EfficientNet-Lite0 ImageNet soft labels" if cfg.teacher else None,
        },
        "hardware": hardware(device),
        "time": {"train_minutes": round(minutes, 2), "budget_minutes": cfg.minutes},
        "train_config": cfg.to_dict(),
        "command": reproduce_command(cfg),
        "class_names": list(class_names),
        "mean_ab": list(stats.mean_ab),
    }


def card_markdown(card: dict[str, Any]) -> str:
    """The card as a human-readable MODEL_CARD.md."""
    from model.evaluation import markdown_sources, markdown_table

    recipe, data, when = card["recipe"], card["data"], card["time"]
    lines = [
        f"# {card['name']}",
        "",
        f"- **Architecture**: {card['architecture']} (family `{card['family']}`, preset `{card['preset']}`)",
        f"- **Parameters**: {card['parameters']:,}",
        f"- **Data**: {data['name']}, split `{data['split']}` ({data['train_images']:,} photos); "
        f"labelled classes: {', '.join(data['labelled_classes']) or 'none'}",
        f"- **Data hash**: {', '.join(f'{k} `{v}`' for k, v in data.items() if k.endswith('sha256'))}",
        f"- **Recipe**: {recipe['optimizer']}; loss: {recipe['loss']}; {recipe['augmentation']}; "
        f"{recipe['size']} px crops, batch {recipe['batch_size']}, {recipe['steps']:,} steps "
        f"({recipe['images_seen']:,} images, {recipe['epochs']} epochs)"
        + (f"; teacher: {recipe['teacher']}" if recipe.get("teacher") else ""),
        f"- **Hardware**: {card['hardware']}",
        f"- **Time**: {when['train_minutes']} min of training",
        f"- **Training set mean a\\*b\\***: ({card['mean_ab'][0]:.2f}, {card['mean_ab'][1]:.2f})",
        *_gain_lines(card),
        "",
        "Reproduce:",
        "",
        "```",
        card["command"],
        "```",
    ]
    evaluation = card.get("eval")
    if evaluation:
        res = evaluation["results"]
        rows = {"this model": res["model"], "greyscale": res["greyscale"], "mean a\\*b\\*": res["mean_ab"]}
        lines += [
            "",
            f"## Evaluation ({evaluation['split']} split, {evaluation['images']} photos)",
            "",
            markdown_table(rows, res["ground_truth"]["colorfulness"]),
            "",
        ]
        if len(evaluation.get("sources") or {}) >= 2:
            lines += ["Per source:", "", markdown_sources(evaluation), ""]
        lines += [
            "```",
            evaluation["command"],
            "```",
        ]
    return "\n".join(lines) + "\n"


def _calibration_photos(cal: dict[str, Any]) -> str:
    if cal.get("check_set"):
        return f"photos of the `{cal['check_set']}` check set (outside the training data)"
    return f"`{cal['split']}` photos"


def _gain_lines(card: dict[str, Any]) -> list[str]:
    cal = card.get("calibration")
    if not cal:
        return []
    gain = (
        f"- **Chroma gain**: {card['chroma_gain']:.2f}, applied to the predicted a\\*b\\* (`colorize calibrate`: the "
        f"largest gain costing at most {cal['max_psnr_drop']} dB PSNR on {cal['images']} {_calibration_photos(cal)}, "
        f"whose colourfulness is {cal['truth_colorfulness']:.2f}; `--chroma-gain` overrides it)"
    )
    return [gain, *_neutral_lines(card)]


def _neutral_lines(card: dict[str, Any]) -> list[str]:
    if not card.get("neutral"):
        return []
    return [
        f"- **Neutral floor**: {card['neutral']:g}: the tint shared by each picture's least colourful "
        f"{card['neutral']:.0%} of pixels is removed before the gain (`--neutral` overrides it; 0 turns it off)"
    ]
