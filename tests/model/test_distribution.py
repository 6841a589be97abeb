"""The distribution head: a*b* move towards its annealed mean only as far as the head is sure; training it
alone leaves every other weight (and batch-norm statistic) as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.color import normalize_ab
from model.config import get_preset
from model.network import DistributionHead, FusionNetwork
from tests.trainrun import photo_folder, train_args


def _net(blend: float) -> tuple[FusionNetwork, DistributionHead]:
    torch.manual_seed(0)
    net = FusionNetwork(get_preset("test").replace(distribution=blend)).eval()
    head = net.colorization.distribution
    assert head is not None
    return net, head


def _sure_of(head: DistributionHead, ab: tuple[float, float]) -> int:
    """Make the head certain of the bin nearest ``ab`` everywhere; return that bin."""
    centres = head.quantizer.centres
    target = int((centres - torch.tensor(ab)).pow(2).sum(dim=1).argmin())
    last = head.layers[-1]
    assert isinstance(last, torch.nn.Conv2d) and last.bias is not None
    last.weight.zero_()
    last.bias.zero_()
    last.bias[target] = 60.0
    return target


def test_no_head_is_the_published_network() -> None:
    assert FusionNetwork(get_preset("paper")).colorization.distribution is None
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="distribution"):
            get_preset("test").replace(distribution=bad)


def test_a_sure_head_moves_the_colour_by_the_blend_and_an_unsure_one_not_at_all() -> None:
    net, head = _net(0.5)
    x = torch.rand(2, 1, 32, 48)
    with torch.no_grad():
        head.train()  # raw regression while the head trains
        raw, _ = net(x)
        head.eval()
        last = head.layers[-1]
        assert isinstance(last, torch.nn.Conv2d) and last.bias is not None
        last.weight.zero_()
        last.bias.zero_()  # uniform over every bin: no certainty
        unsure, _ = net(x)
        bin_index = _sure_of(head, (40.0, 60.0))
        sure, _ = net(x)
    torch.testing.assert_close(unsure, raw, atol=1e-5, rtol=0)
    target = normalize_ab(head.quantizer.centres[bin_index]).view(1, 2, 1, 1)
    torch.testing.assert_close(sure, raw + 0.5 * (target - raw), atol=2e-3, rtol=0)  # halfway to the bin


def test_certainty_is_one_minus_normalised_entropy() -> None:
    _, head = _net(1.0)
    q = head.quantizer.num_bins
    logits = torch.zeros(1, q, 2, 2)
    logits[0, 0, 0, 0] = 80.0  # one pixel certain, the rest uniform
    certainty = head.decode(logits).certainty
    assert certainty.shape == (1, 1, 2, 2)
    assert certainty[0, 0, 0, 0] > 0.99 and certainty[0, 0, 1, 1] < 1e-5


def test_train_only_the_head(tmp_path: Path) -> None:
    from colorize.cli import main

    net = FusionNetwork(get_preset("test"))
    start = save_checkpoint(tmp_path / "start.safetensors", net, family="fusion", config=net.config, card={})
    rest = ["--calibrate-images", "0", "--eval-split", "none", "--max-steps", "3", "--lr", "0.01"]
    out = tmp_path / "run"
    args = train_args(photo_folder(tmp_path / "photos"), out, *rest, "--init-from", str(start))
    extra = ["--distribution", "0.5", "--rebalance-lambda", "0.8", "--train-only", "colorization.distribution"]
    assert main([*args, *extra]) == 0
    trained = load_checkpoint(out / "model.safetensors")
    assert trained.config.distribution == 0.5
    loss = trained.card["recipe"]["loss"]
    assert "distribution head" in loss and "rebalancing lambda 0.8" in loss
    assert "--distribution 0.5" in trained.card["command"] and "--rebalance-lambda 0.8" in trained.card["command"]
    before = load_checkpoint(start).state_dict
    for name, tensor in trained.state_dict.items():
        if name.startswith("colorization.distribution."):
            continue
        assert torch.equal(tensor, before[name].to(tensor.dtype)), name  # weights and batch-norm statistics
    fresh = FusionNetwork(get_preset("test").replace(distribution=0.5)).state_dict()
    key = "colorization.distribution.layers.3.weight"
    assert not torch.equal(trained.state_dict[key].float(), fresh[key].half().float())  # the head learnt


def test_the_blend_is_part_of_the_exported_graph(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from model.export import export_onnx, max_ab_difference
    from model.onnx_backend import OnnxFusionNetwork

    net, head = _net(0.7)
    with torch.no_grad():
        _sure_of(head, (-30.0, 40.0))  # a visible move towards green
    export_onnx(net, tmp_path / "d.onnx")
    graph = OnnxFusionNetwork.load(tmp_path / "d.onnx")
    assert graph.config.distribution == 0.7 and max_ab_difference(net, graph) < 0.01
