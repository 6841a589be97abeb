"""Model families by name: the fusion network, the two comparison baselines and the pretrained-prior family.

Checkpoints store the family name, so the predictor can rebuild any registered network, e.g. the fusion network
or the comparison baselines trained by ``colorize train``. Importing this module registers every built-in
family (each family module registers itself in :mod:`model.registry`); unknown names fail loudly.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from model import baselines, prior  # noqa: F401  (importing them registers "regression", "classification", "prior")
from model.config import PRESETS, FusionConfig
from model.network import FusionNetwork
from model.registry import Family, lookup, register_family, registered

register_family(Family("fusion", FusionConfig.from_dict, FusionNetwork, dict(PRESETS)))


def get_family(name: str) -> Family:
    return lookup(name)


def families() -> list[str]:
    return registered()


def build_model(family: str, config: Any) -> nn.Module:
    return get_family(family).build(config)
