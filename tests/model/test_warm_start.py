"""Warm starts (a fusion checkpoint growing into a prior network) and tone augmentation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import get_preset
from model.families import build_model, get_family
from model.network import FusionNetwork
from model.prior import PRIOR_PRESETS, load_pretrained_prior
from model.training.augment import ToneJitter
from model.training.warm import warm_start, widen
from tests.trainrun import photo_folder, train_args


@pytest.fixture
def fusion_checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(3)
    net = FusionNetwork(get_preset("test"))
    for module in net.modules():  # non-trivial batch-norm statistics, so a wrong copy shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return save_checkpoint(tmp_path / "fusion.safetensors", net, family="fusion", config=net.config, card={})


def test_widen_keeps_old_inputs_and_zeros_new_ones() -> None:
    old, new = torch.randn(4, 6, 1, 1), torch.randn(4, 9, 1, 1)
    grown = widen(old, new)
    assert grown is not None and torch.equal(grown[:, :6], old) and not grown[:, 6:].any()
    assert widen(torch.randn(5, 6, 1, 1), new) is None  # other outputs: not the same layer grown
    assert widen(new, old) is None  # shrinking is not a warm start


def test_prior_network_warm_started_from_fusion_computes_the_same(fusion_checkpoint: Path) -> None:
    prior = build_model("prior", PRIOR_PRESETS["test"])
    load_pretrained_prior(prior)
    backbone = {k: v.clone() for k, v in prior.state_dict().items() if k.startswith("prior.")}
    report = warm_start(prior, fusion_checkpoint)
    assert report.widened == ["fusion.mix.0.weight"]
    assert {name.split(".")[0] for name in report.fresh} == {"project"}
    assert all(torch.equal(prior.state_dict()[k], v) for k, v in backbone.items())  # the ImageNet backbone stays
    fusion = load_checkpoint(fusion_checkpoint).build().eval()
    x = torch.rand(2, 1, 64, 48)
    with torch.no_grad():
        expected, logits = fusion(x)
        got, got_logits = prior.eval()(x)
    assert torch.allclose(got, expected, atol=1e-5) and torch.allclose(got_logits, logits, atol=1e-5)


def test_warm_start_refuses_an_unrelated_checkpoint(tmp_path: Path, fusion_checkpoint: Path) -> None:
    other = build_model("regression", get_family("regression").presets["test"])
    path = save_checkpoint(tmp_path / "r.safetensors", other, family="regression", config=other.config, card={})
    with pytest.raises(ValueError, match="no tensor matches"):
        warm_start(FusionNetwork(get_preset("test")), path)


def test_colorize_train_init_from_and_tone_jitter(tmp_path: Path, fusion_checkpoint: Path) -> None:
    from colorize.cli import main

    out = tmp_path / "run"
    rest = ["--family", "prior", "--calibrate-images", "0", "--eval-split", "none", "--max-steps", "1", "--lr", "1e-9"]
    args = train_args(photo_folder(tmp_path / "photos"), out, *rest)
    assert main([*args, "--init-from", str(fusion_checkpoint), "--tone-jitter", "0.5"]) == 0
    card = load_checkpoint(out / "model.safetensors").card
    assert "tone curves on 50% of the inputs" in card["recipe"]["augmentation"]
    assert card["train_config"]["init_from"] == str(fusion_checkpoint)
    trained = load_checkpoint(out / "model.safetensors").state_dict
    start = load_checkpoint(fusion_checkpoint).state_dict
    # one step at a negligible learning rate: the copied weights are still the checkpoint's (fp16 export)
    assert torch.allclose(trained["low.layers.0.0.weight"].float(), start["low.layers.0.0.weight"].float(), atol=1e-3)
    assert main([*args, "--out", str(tmp_path / "bad"), "--tone-jitter", "1.5"]) == 2


def test_tone_jitter_changes_tone_not_order() -> None:
    gen = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(32, 1, 4, 64).contiguous()
    out = ToneJitter(probability=0.5)(ramp, gen)
    changed = (out - ramp).abs().flatten(1).amax(dim=1) > 1e-6
    assert 4 < int(changed.sum()) < 28  # about half the images get a curve
    assert out.min() >= 0 and out.max() <= 1
    assert (out[:, :, :, 1:] >= out[:, :, :, :-1] - 1e-6).all()  # monotonic: tones keep their order
    assert torch.equal(ToneJitter(probability=0.0)(ramp), ramp)
