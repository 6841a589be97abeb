"""Checkpoints: one safetensors file holding the weights, with the model family, its config and the model
card as JSON in the header metadata. No pickle anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from model.errors import CheckpointError
from model.families import build_model, get_family

FORMAT_VERSION = "1"


@dataclass
class Checkpoint:
    family: str
    config: Any  # the family's config dataclass
    state_dict: dict[str, torch.Tensor]
    card: dict[str, Any] = field(default_factory=dict)

    def build(self) -> nn.Module:
        """Instantiate the network and load the weights (cast to fp32 for the model's own dtype)."""
        model = build_model(self.family, self.config)
        state = {k: v.float() if v.is_floating_point() else v for k, v in self.state_dict.items()}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"weights do not match the {self.family} config: {exc}") from None
        return model


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    family: str,
    config: Any,
    card: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write weights (optionally cast, e.g. to fp16 for shipping) with config and card to ``path``."""
    state = {}
    for key, value in model.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        state[key] = tensor
    return _write(Path(path), state, family=family, config=config, card=card)


def update_card(path: str | Path, changes: dict[str, Any], *, out: str | Path | None = None) -> dict[str, Any]:
    """Merge ``changes`` into the card of the checkpoint at ``path`` and rewrite it (in place, or as ``out``);
    the weights are written back exactly as stored (same tensors, same dtypes). Returns the new card."""
    ckpt = load_checkpoint(path)
    card = {**ckpt.card, **changes}
    _write(Path(out or path), ckpt.state_dict, family=ckpt.family, config=ckpt.config, card=card)
    return card


def extend_checkpoint(
    path: str | Path,
    tensors: dict[str, torch.Tensor],
    *,
    config: Any,
    changes: dict[str, Any],
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Add ``tensors`` to the checkpoint at ``path`` under a new ``config`` (the same family), merge ``changes``
    into its card and rewrite it (in place, or as ``out``); the stored weights are kept exactly. Returns the card."""
    ckpt = load_checkpoint(path)
    state = {**ckpt.state_dict, **{k: v.detach().cpu().contiguous() for k, v in tensors.items()}}
    card = {**ckpt.card, **changes}
    Checkpoint(ckpt.family, config, state, card).build()  # fails loudly if the config and the weights disagree
    _write(Path(out or path), state, family=ckpt.family, config=config, card=card)
    return card


def _write(
    path: Path, state: dict[str, torch.Tensor], *, family: str, config: Any, card: dict[str, Any] | None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format_version": FORMAT_VERSION,
        "family": family,
        "config": json.dumps(config.to_dict()),
        "card": json.dumps(card or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(path)  # never leave a half-written checkpoint behind
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    meta = read_metadata(path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a colorizer checkpoint (format {meta.get('format_version')!r})")
    try:
        family = get_family(meta["family"])
        config = family.config_from_dict(json.loads(meta["config"]))
        card = json.loads(meta.get("card", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: bad checkpoint metadata: {exc}") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read weights from {path}: {exc}") from None
    return Checkpoint(family=family.name, config=config, state_dict=state, card=card)
