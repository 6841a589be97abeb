"""The resumable training state in one safetensors file (no pickle): network and loss weights in fp32, the
optimiser's moments, the data statistics, and progress counters plus configs as JSON metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from model.errors import CheckpointError
from model.training.stats import DataStats

STATE_FORMAT = "train-state-1"


@dataclass
class TrainingProgress:
    step: int = 0
    images: int = 0
    seconds: float = 0.0  # training time spent so far (all runs)


def save_state(
    path: Path,
    *,
    model: nn.Module,
    loss: nn.Module,
    optimizer: torch.optim.Optimizer,
    stats: DataStats,
    progress: TrainingProgress,
    meta: dict[str, Any],
) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("model.", model), ("loss.", loss)):
        for key, value in module.state_dict().items():
            tensors[prefix + key] = value.detach().cpu().contiguous()
    opt = optimizer.state_dict()
    for index, slots in opt["state"].items():
        for name, value in slots.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["stats.ab_histogram"] = stats.ab_histogram.contiguous()
    metadata = {
        "format": STATE_FORMAT,
        "progress": json.dumps(progress.__dict__),
        "param_groups": json.dumps(opt["param_groups"]),
        "stats": json.dumps({"mean_ab": list(stats.mean_ab), "images": stats.images}),
        **{k: json.dumps(v) for k, v in meta.items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)


@dataclass
class LoadedState:
    tensors: dict[str, torch.Tensor]
    progress: TrainingProgress
    stats: DataStats
    param_groups: list[dict[str, Any]]
    meta: dict[str, Any]

    def module_state(self, prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def restore_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in self.module_state("optim.").items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": self.param_groups})


def load_state(path: Path) -> LoadedState:
    if not path.is_file():
        raise CheckpointError(f"no training state to resume from: {path}")
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    if metadata.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a training state ({metadata.get('format')!r})")
    tensors = load_file(str(path))
    stats_meta = json.loads(metadata.pop("stats"))
    stats = DataStats(
        mean_ab=(float(stats_meta["mean_ab"][0]), float(stats_meta["mean_ab"][1])),
        ab_histogram=tensors.pop("stats.ab_histogram"),
        images=stats_meta["images"],
    )
    progress = TrainingProgress(**json.loads(metadata.pop("progress")))
    groups = json.loads(metadata.pop("param_groups"))
    metadata.pop("format")
    meta = {k: json.loads(v) for k, v in metadata.items()}
    return LoadedState(tensors, progress, stats, groups, meta)
