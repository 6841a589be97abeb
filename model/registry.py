"""Model families by name. Each family has a config dataclass (with ``to_dict``/``from_dict``) and a builder.

Fails loudly on unknown or duplicate names. Checkpoints store the family name, so the predictor can rebuild
any registered network, e.g. the fusion network or the comparison baselines trained by ``colorize train``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from torch import nn

from model.config import PRESETS, FusionConfig


class ModelConfig(Protocol):
    name: str

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Family:
    name: str
    config_from_dict: Callable[[dict[str, Any]], Any]
    build: Callable[[Any], nn.Module]
    presets: dict[str, Any]
    # Called on a freshly built network when a training run starts from scratch (e.g. to load pretrained
    # weights that checkpoints then carry themselves); None: nothing to load.
    init_pretrained: Callable[[nn.Module], None] | None = None


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    if family.name in _FAMILIES:
        raise ValueError(f"model family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    _ensure_builtin()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; registered: {sorted(_FAMILIES)}") from None


def families() -> list[str]:
    _ensure_builtin()
    return sorted(_FAMILIES)


def build_model(family: str, config: Any) -> nn.Module:
    return get_family(family).build(config)


def _ensure_builtin() -> None:
    if "fusion" in _FAMILIES:
        return
    from model.network import FusionColorizer

    register_family(Family("fusion", FusionConfig.from_dict, FusionColorizer, dict(PRESETS)))
    for module in ("model.baselines", "model.prior"):  # comparison baselines, the pretrained-prior family
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
