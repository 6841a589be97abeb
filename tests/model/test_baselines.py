"""The comparison models: registered families with the fusion network's interface, a*b* quantisation and
each family's registered loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model import Colorizer
from model.baselines import BaselineConfig
from model.checkpoint import save_checkpoint
from model.color import normalize_ab, rgb_to_lab
from model.config import PredictorConfig
from model.families import build_model, families, get_family
from model.quantize import ABQuantizer
from model.training.losses import Batch, LossOptions, build_loss, rebalance_weights
from model.training.stats import DataStats
from tests.imagegen import colour_photo

BASELINES = ["regression", "classification"]


def test_baselines_are_registered_with_presets() -> None:
    assert {"fusion", "regression", "classification"} <= set(families())
    for name in BASELINES:
        family = get_family(name)
        assert {"paper", "small", "tiny", "test"} <= set(family.presets)
        assert family.config_from_dict(family.presets["tiny"].to_dict()) == family.presets["tiny"]
    with pytest.raises(ValueError, match="unknown BaselineConfig fields"):
        BaselineConfig.from_dict({"width": 0.5, "depth": 3})
    with pytest.raises(ValueError, match="width"):
        BaselineConfig(width=0.0)


@pytest.mark.parametrize("family", BASELINES)
def test_forward_matches_the_fusion_interface(family: str) -> None:
    net = build_model(family, get_family(family).presets["test"]).eval()
    with torch.no_grad():
        ab, logits = net(torch.rand(2, 1, 40, 56))
    assert ab.shape == (2, 2, 20, 28)
    assert logits is None
    assert float(ab.min()) >= 0.0 and float(ab.max()) <= 1.0


@pytest.mark.parametrize("family", BASELINES)
def test_colorizer_runs_and_reloads_any_family(family: str, tmp_path: Path) -> None:
    cfg = get_family(family).presets["test"]
    card = {"name": f"{family} test", "trained": True}
    net = build_model(family, cfg)
    path = save_checkpoint(tmp_path / "m.safetensors", net, family=family, config=cfg, card=card, dtype=torch.float16)
    colorizer = Colorizer.from_pretrained(path, config=PredictorConfig(device="cpu"))
    assert colorizer.family == family and colorizer.trained
    out = colorizer.colorize(Image.fromarray(colour_photo(37, 29)))
    assert out.rgb.shape == (29, 37, 3) and out.rgb.dtype == np.uint8
    assert out.labels == []


def test_quantizer_bins_cover_the_srgb_gamut() -> None:
    q = ABQuantizer(10.0)
    assert 250 <= q.num_bins <= 320  # Zhang et al. report 313 bins for their (ImageNet-derived) gamut
    centres = q.centres[:, :, None, None]  # (Q, 2, 1, 1): each centre as a 1x1 image
    assert torch.equal(q.nearest(centres)[:, 0, 0], torch.arange(q.num_bins))
    # Every 8-bit colour's nearest lattice point is a bin.
    rgb = torch.from_numpy(colour_photo(64, 64, seed=5)).permute(2, 0, 1).float() / 255
    ab = rgb_to_lab(rgb)[None, 1:]
    assert bool((q.nearest(ab) >= 0).all())


def test_soft_encoding_and_annealed_mean() -> None:
    q = ABQuantizer(10.0)
    ab = torch.tensor([[3.0, -2.0], [40.0, 41.0]]).T.reshape(1, 2, 1, 2)  # two pixels
    idx, weight = q.soft_encode(ab)
    assert idx.shape == (1, 9, 1, 2)
    assert torch.allclose(weight.sum(dim=1), torch.ones(1, 1, 2))
    top = idx.gather(1, weight.argmax(dim=1, keepdim=True))[0, 0, 0]  # (2,)
    assert torch.equal(top, q.nearest(ab)[0, 0])
    assert torch.equal(q.centres[top[1]], torch.tensor([40.0, 40.0]))
    # A confident distribution decodes to its bin; at T -> 0 the annealed mean is the mode.
    logits = torch.zeros(1, q.num_bins, 1, 1)
    logits[0, int(top[1])] = 5.0
    assert torch.allclose(q.annealed_mean(logits, 0.01)[0, :, 0, 0], torch.tensor([40.0, 40.0]))
    mean = q.annealed_mean(logits, 1.0)[0, :, 0, 0]  # at T = 1 the other bins pull it towards the middle
    assert float(mean.norm()) < 40.0 * 2**0.5


def test_rebalancing_weights_favour_rare_colours() -> None:
    q = ABQuantizer(10.0)
    hist = torch.ones(q.num_bins)
    common = int(q.nearest(torch.zeros(1, 2, 1, 1))[0, 0, 0])  # the grey bin
    hist[common] = 1000.0
    w = rebalance_weights(hist, q, lam=0.5)
    p = hist / hist.sum()
    kernel = torch.exp(-torch.cdist(q.centres, q.centres).pow(2) / 50.0)
    smooth = kernel.double() @ p.double()
    assert float((smooth / smooth.sum() * w.double()).sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(w[common]) < float(w.median())


def _fixed_batch() -> Batch:
    rgb = torch.stack([torch.from_numpy(colour_photo(32, 32, seed=s)) for s in range(4)]).permute(0, 3, 1, 2)
    lab = rgb_to_lab(rgb.float() / 255)
    ab = normalize_ab(torch.nn.functional.avg_pool2d(lab[:, 1:], 2))
    return Batch(lab[:, :1] / 100, ab, torch.tensor([0, 1, -1, -1]))


@pytest.mark.parametrize("family", ["fusion", "regression", "classification"])
def test_each_family_loss_trains_its_model(family: str) -> None:
    torch.manual_seed(0)
    net = build_model(family, get_family(family).presets["test"])
    stats = DataStats(mean_ab=(0.0, 0.0), ab_histogram=torch.ones(ABQuantizer(10.0).num_bins), images=4)
    loss_fn = build_loss(family, net, stats, LossOptions())
    assert loss_fn.describe()
    batch = _fixed_batch()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(8):
        out = loss_fn(net, batch)
        first = first if first is not None else float(out.total.detach())
        opt.zero_grad()
        out.total.backward()
        opt.step()
    assert float(loss_fn(net, batch).total.detach()) < first
    if family == "fusion":
        assert set(out.parts) == {"mse", "ce"}  # two labelled rows


def test_unknown_family_has_no_loss() -> None:
    stats = DataStats((0.0, 0.0), torch.ones(3), 1)
    with pytest.raises(ValueError, match="no loss registered"):
        build_loss("nope", torch.nn.Identity(), stats, LossOptions())
