"""checkpoint.update_card: the one way a checkpoint's card is rewritten (calibration, post-training eval)."""

from __future__ import annotations

from pathlib import Path

import torch

from model.checkpoint import load_checkpoint, save_checkpoint, update_card
from model.config import get_preset
from model.families import build_model


def test_update_card_merges_the_card_and_keeps_the_weights_exactly(tmp_path: Path) -> None:
    config = get_preset("test")
    path = save_checkpoint(
        tmp_path / "w.safetensors",
        build_model("fusion", config),
        family="fusion",
        config=config,
        card={"name": "t", "chroma_gain": 1.0},
        dtype=torch.float16,
    )
    before = load_checkpoint(path)
    card = update_card(path, {"chroma_gain": 1.4, "eval": {"images": 2}})
    after = load_checkpoint(path)
    assert card == after.card == {"name": "t", "chroma_gain": 1.4, "eval": {"images": 2}}
    assert after.family == "fusion" and after.config == config
    assert before.state_dict.keys() == after.state_dict.keys()
    for key, tensor in before.state_dict.items():
        assert after.state_dict[key].dtype == tensor.dtype and torch.equal(after.state_dict[key], tensor), key


def test_update_card_can_write_a_copy(tmp_path: Path) -> None:
    config = get_preset("test")
    path = save_checkpoint(tmp_path / "w.safetensors", build_model("fusion", config), family="fusion", config=config)
    update_card(path, {"chroma_gain": 1.2}, out=tmp_path / "copy.safetensors")
    assert load_checkpoint(path).card == {}
    assert load_checkpoint(tmp_path / "copy.safetensors").card == {"chroma_gain": 1.2}
