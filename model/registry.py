"""The registry mechanism: a family has a name, a config dataclass (with ``to_dict``/``from_dict``) and a
builder; registering a name twice fails loudly.

This module imports no network, so the family modules (:mod:`model.network`, :mod:`model.baselines`,
:mod:`model.prior`) can register themselves here without an import cycle. Look families up through
:mod:`model.families`, which imports every built-in family first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn


@dataclass(frozen=True)
class Family:
    name: str
    config_from_dict: Callable[[dict[str, Any]], Any]
    build: Callable[[Any], nn.Module]
    presets: dict[str, Any]
    # Called on a freshly built network when a training run starts from scratch (e.g. to load pretrained
    # weights that checkpoints then carry themselves), with a checkpoint's state dict to take them from
    # instead of their usual source, or None; None: nothing to load.
    init_pretrained: Callable[[nn.Module, dict[str, Tensor] | None], None] | None = None


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    if family.name in _FAMILIES:
        raise ValueError(f"model family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def lookup(name: str) -> Family:
    """The registered family ``name``, among those whose modules were imported (see :mod:`model.families`)."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; registered: {sorted(_FAMILIES)}") from None


def registered() -> list[str]:
    return sorted(_FAMILIES)
