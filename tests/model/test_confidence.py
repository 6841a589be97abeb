"""The confidence head: where it expects a large error the colour is pulled towards neutral; training it
alone leaves every other weight (and batch-norm statistic) as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import get_preset
from model.network import FusionNetwork
from tests.trainrun import photo_folder, train_args


def test_no_head_is_the_published_network() -> None:
    assert FusionNetwork(get_preset("paper")).colorization.confidence is None
    with pytest.raises(ValueError, match="confidence"):
        get_preset("test").replace(confidence=-1.0)


def test_large_expected_error_pulls_towards_neutral() -> None:
    torch.manual_seed(0)
    net = FusionNetwork(get_preset("test").replace(confidence=1.0)).eval()
    head = net.colorization.confidence
    assert head is not None
    x = torch.rand(2, 1, 32, 48)
    with torch.no_grad():
        head.train()  # raw colour while the head trains
        raw, _ = net(x)
        head.eval()
        sure, _ = net(x)  # the initial variance is small: colours nearly kept
        head.layers[-1].bias.fill_(5.0)  # now it expects a huge error everywhere
        unsure, _ = net(x)
    assert (sure - 0.5).abs().sum() <= (raw - 0.5).abs().sum() + 1e-6
    assert (unsure - 0.5).abs().max() < 0.1 * (raw - 0.5).abs().max()  # nearly neutral
    kept = (unsure - 0.5).abs() > 1e-6
    assert torch.equal(torch.sign(unsure - 0.5)[kept], torch.sign(raw - 0.5)[kept])  # hues kept, only pulled in


def test_train_only_the_head(tmp_path: Path) -> None:
    from colorize.cli import main

    net = FusionNetwork(get_preset("test"))
    start = save_checkpoint(tmp_path / "start.safetensors", net, family="fusion", config=net.config, card={})
    rest = ["--calibrate-images", "0", "--eval-split", "none", "--max-steps", "3", "--lr", "0.01"]
    out = tmp_path / "run"
    args = train_args(photo_folder(tmp_path / "photos"), out, *rest, "--init-from", str(start))
    assert main([*args, "--confidence", "1.0", "--train-only", "colorization.confidence"]) == 0
    trained = load_checkpoint(out / "model.safetensors")
    assert trained.config.confidence == 1.0 and "confidence head" in trained.card["recipe"]["loss"]
    before = load_checkpoint(start).state_dict
    for name, tensor in trained.state_dict.items():
        if name.startswith("colorization.confidence."):
            continue
        assert torch.equal(tensor, before[name].to(tensor.dtype)), name  # weights and batch-norm statistics
    head = {k: v for k, v in trained.state_dict.items() if k.startswith("colorization.confidence.layers.2")}
    assert any(v.float().abs().sum() > 0 for k, v in head.items() if k.endswith("weight"))  # the head learnt


def test_the_pull_towards_neutral_is_part_of_the_exported_graph(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from model.export import export_onnx, max_ab_difference
    from model.onnx_backend import OnnxFusionNetwork

    net = FusionNetwork(get_preset("test").replace(confidence=2.0)).eval()
    head = net.colorization.confidence
    assert head is not None
    with torch.no_grad():
        head.layers[-1].bias.fill_(-3.0)  # an expected error comparable to the colours: a visible pull
    export_onnx(net, tmp_path / "c.onnx")
    graph = OnnxFusionNetwork.load(tmp_path / "c.onnx")
    assert graph.config.confidence == 2.0 and max_ab_difference(net, graph) < 0.01
