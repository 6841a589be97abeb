"""The paper's architecture: parameter count and every sub-network's output shape."""

from __future__ import annotations

import pytest
import torch

from model.config import PRESETS, FusionConfig, get_preset
from model.network import FusionNetwork, count_parameters


def test_paper_parameter_count() -> None:
    model = FusionNetwork(get_preset("paper"))
    # 42.4M as published (205 Places classes); batch-norm scale/shift included.
    assert count_parameters(model) == pytest.approx(42.4e6, rel=0.002)


def test_paper_stage_shapes() -> None:
    cfg = get_preset("paper")
    model = FusionNetwork(cfg).eval()
    x = torch.rand(2, 1, 96, 128)
    with torch.no_grad():
        low = model.low(x)
        assert low.shape == (2, 512, 12, 16)
        mid = model.mid(low)
        assert mid.shape == (2, 256, 12, 16)
        g_in = model.global_input(x)
        assert g_in.shape == (2, 1, 224, 224)
        g_low = model.low(g_in)
        assert g_low.shape == (2, 512, 28, 28)
        assert model.glob.convs(g_low).shape == (2, 512, 7, 7)
        vector, hidden = model.glob(g_low)
        assert vector.shape == (2, 256) and hidden.shape == (2, 512)
        assert model.classifier(hidden).shape == (2, 205)
        fused = model.fusion(mid, vector)
        assert fused.shape == (2, 256, 12, 16)
        ab = model.colorization(fused)
        assert ab.shape == (2, 2, 48, 64)  # half the input resolution
        assert ab.min() >= 0.0 and ab.max() <= 1.0  # sigmoid output
        out, logits = model(x)
        assert torch.equal(out, ab) and logits is not None and logits.shape == (2, 205)


def test_low_level_weights_are_shared_by_both_paths() -> None:
    model = FusionNetwork(get_preset("test"))
    low_params = {id(p) for p in model.low.parameters()}
    others = {id(p) for name, m in model.named_children() if name != "low" for p in m.parameters()}
    assert low_params and not low_params & others


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_run_any_size(name: str) -> None:
    model = FusionNetwork(get_preset(name)).eval()
    with torch.no_grad():
        ab, logits = model(torch.rand(1, 1, 40, 24))
    assert ab.shape == (1, 2, 20, 12)
    assert logits is not None and logits.shape[1] == get_preset(name).num_classes


def test_width_and_classes_are_config_fields() -> None:
    small = count_parameters(FusionNetwork(get_preset("paper", width=0.5)))
    assert small < count_parameters(FusionNetwork(get_preset("paper"))) / 3
    assert FusionNetwork(get_preset("test", num_classes=3)).classifier.layers[-1].out_features == 3


def test_config_validation_and_round_trip() -> None:
    with pytest.raises(ValueError, match="global_size"):
        FusionConfig(global_size=100)
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("nope")
    with pytest.raises(ValueError, match="class_names"):
        FusionConfig(num_classes=2, class_names=("a",))
    cfg = get_preset("tiny", class_names=tuple(f"c{i}" for i in range(205)))
    assert FusionConfig.from_dict(cfg.to_dict()) == cfg


def test_style_vector_replaces_own_global_features() -> None:
    model = FusionNetwork(get_preset("test")).eval()
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        own, _ = model.global_features(x)
        a, _ = model(x)
        b, logits = model(x, global_vector=own)
        c, _ = model(x, global_vector=own + 1.0)
    assert logits is None
    assert torch.allclose(a, b)
    assert not torch.allclose(a, c)
