"""The quality benchmarks' model names: one checkpoint, several predictor settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.models import load_models
from model.checkpoint import save_checkpoint


def test_specs_with_settings(test_colorizer: Any, tmp_path: Path) -> None:
    net = test_colorizer.network
    path = save_checkpoint(
        tmp_path / "w.safetensors", net, family="fusion", config=net.config, card={"chroma_gain": 1.2}
    )
    models = load_models([f"plain={path}", f"tuned={path}@gain=1.5,neutral=0.1"])
    assert (models["plain"].chroma_gain, models["plain"].neutral) == (1.2, 0.0)
    assert (models["tuned"].chroma_gain, models["tuned"].neutral) == (1.5, 0.1)
    with pytest.raises(SystemExit, match="unknown setting"):
        load_models([f"x={path}@speed=2"])
    with pytest.raises(SystemExit, match="NAME=WEIGHTS"):
        load_models([str(path)])
