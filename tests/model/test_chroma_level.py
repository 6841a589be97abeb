"""The chroma level: one factor per photo, read from the distribution head's expected chroma, fitted in closed
form on training photos, stored in the checkpoint and part of the exported graph."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from colorize.cli import main
from model.checkpoint import load_checkpoint, save_checkpoint
from model.chroma_level import FEATURES, LIMITS, OFFSET, ChromaLevel, fit_level, level_features
from model.color import normalize_ab
from model.config import get_preset
from model.network import FusionNetwork
from model.neutral import floor_tint
from tests.trainrun import photo_folder


def _nets(blend: float = 0.5) -> tuple[FusionNetwork, FusionNetwork]:
    """The same weights without and with a (still unfitted) chroma level, in eval mode."""
    torch.manual_seed(0)
    plain = FusionNetwork(get_preset("test").replace(distribution=blend)).eval()
    levelled = FusionNetwork(get_preset("test").replace(distribution=blend, chroma_level=True)).eval()
    missing, unexpected = levelled.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(".level." in key for key in missing)
    return plain, levelled


def _level(net: FusionNetwork) -> ChromaLevel:
    level = net.colorization.level
    assert level is not None
    return level


def test_fit_recovers_a_known_log_linear_factor() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, len(FEATURES))) * [0.5, 0.4, 0.3, 0.05] + [2.0, 2.5, 2.7, 0.5]
    coef, bias = np.array([-0.8, 0.2, 1.1, 0.6]), -0.4
    log_factor = features @ coef + bias
    truth = np.exp(features[:, 0] + log_factor) - OFFSET  # the truth's chroma is the prediction's times the factor
    fitted_coef, fitted_bias = fit_level(features, truth, ridge=1e-6)
    np.testing.assert_allclose(fitted_coef, coef, atol=1e-4)
    assert fitted_bias == pytest.approx(bias, abs=1e-3)
    with pytest.raises(ValueError, match="features"):
        fit_level(features[:, :3], truth)
    with pytest.raises(ValueError, match="at least"):
        fit_level(features[:5], truth[:5])


def test_an_unfitted_level_changes_nothing_and_a_fitted_one_scales_about_neutral() -> None:
    plain, levelled = _nets()
    x = torch.rand(2, 1, 32, 48)
    with torch.no_grad():
        base, _ = plain(x)
        same, _ = levelled(x)
        torch.testing.assert_close(same, base, atol=1e-6, rtol=0)  # factor 1 until fitted
        level = _level(levelled)
        level.load_fit(np.zeros(len(FEATURES)), math.log(1.5))
        scaled, _ = levelled(x)
        level.load_fit(np.zeros(len(FEATURES)), math.log(10.0))
        capped, _ = levelled(x)
    inside = (base - 0.5).abs() < 0.3  # not clipped at the gamut's edge after scaling
    torch.testing.assert_close((scaled - 0.5)[inside], 1.5 * (base - 0.5)[inside], atol=1e-5, rtol=0)
    assert torch.all(torch.sign(scaled - 0.5) == torch.sign(base - 0.5))  # the same hue, only more of it
    torch.testing.assert_close(capped, (0.5 + (base - 0.5) * LIMITS[1]).clamp(0, 1), atol=1e-5, rtol=0)


def test_the_factor_follows_the_statistics() -> None:
    level = ChromaLevel()
    level.load_fit(np.array([-1.0, 0.0, 1.0, 0.0]), 0.0)  # s = (expected + 0.5) / (decoded + 0.5)
    features = torch.tensor([[math.log(10.5), 0.0, math.log(20.5), 0.5], [math.log(10.5), 0.0, math.log(10.5), 0.5]])
    torch.testing.assert_close(level.factor(features), torch.tensor([20.5 / 10.5, 1.0]))
    with pytest.raises(ValueError, match="coefficients"):
        level.load_fit(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="neutral share"):
        level.set_share(0.9)


def test_features_measure_chroma_as_the_predictor_outputs_it() -> None:
    # a photo tinted (10, 20) all over, with a quarter of it a strong colour on top of the tint
    ab = torch.zeros(1, 2, 8, 8)
    ab[:, 0], ab[:, 1] = 10.0, 20.0
    ab[:, :, :4, :4] += torch.tensor([40.0, -30.0]).view(1, 2, 1, 1)
    regression = normalize_ab(ab * 0.5)
    q = 5
    centres = torch.tensor([[0.0, 0.0], [30.0, 40.0], [-30.0, 40.0], [0.0, -50.0], [60.0, 80.0]])
    probs = torch.full((1, q, 4, 4), 1.0 / q)  # uniform: expected |ab| = the mean bin magnitude
    certainty = torch.full((1, 1, 4, 4), 0.25)
    f = level_features(normalize_ab(ab), regression, probs, certainty, centres, share=0.05)
    assert f.shape == (1, len(FEATURES))
    floored = 0.25 * 50.0  # the tint is removed; the quarter keeps |(40, -30)| = 50
    assert float(f[0, 0]) == pytest.approx(math.log(floored + OFFSET), rel=1e-4)
    regressed = float(torch.hypot(ab[:, 0] * 0.5, ab[:, 1] * 0.5).mean())
    assert float(f[0, 1]) == pytest.approx(math.log(regressed + OFFSET), rel=1e-4)
    assert float(f[0, 2]) == pytest.approx(math.log(float(centres.norm(dim=1).mean()) + OFFSET), rel=1e-4)
    assert float(f[0, 3]) == pytest.approx(0.25)


def test_floor_tint_is_the_mean_of_the_least_colourful_pixels() -> None:
    torch.manual_seed(1)
    ab = torch.randn(2, 2, 12, 10) * 20
    for share, step in ((0.05, 1), (0.3, 2), (0.0, 1)):
        sample = ab[:, :, ::step, ::step].flatten(2).numpy()
        k = max(1, round(share * sample.shape[-1]))
        for b in range(2):
            idx = np.argsort(np.hypot(*sample[b]), kind="stable")[:k]
            expected = sample[b][:, idx].mean(axis=1)
            np.testing.assert_allclose(floor_tint(ab, share, step)[b].numpy(), expected, rtol=1e-5, atol=1e-4)


def test_the_level_needs_a_distribution_head() -> None:
    with pytest.raises(ValueError, match="distribution"):
        get_preset("test").replace(chroma_level=True)
    plain, _ = _nets()
    with pytest.raises(ValueError, match="no chroma level"):
        plain.level_features(torch.rand(1, 1, 32, 32))


def test_fit_level_stores_it_in_the_checkpoint(tmp_path: Path) -> None:
    plain, _ = _nets()
    start = save_checkpoint(
        tmp_path / "d.safetensors", plain, family="fusion", config=plain.config, card={"neutral": 0.05}
    )
    photos = photo_folder(tmp_path / "photos", count=12)
    out = tmp_path / "levelled.safetensors"
    args = ["calibrate", "--fit-level", "--data", str(photos), "--weights", str(start), "--device", "cpu"]
    assert main([*args, "--neutral", "0.1", "--out", str(out)]) == 0
    fitted = load_checkpoint(out)
    assert fitted.config.chroma_level and not load_checkpoint(start).config.chroma_level
    card = fitted.card["chroma_level"]
    assert card["images"] == 12 and card["neutral"] == 0.1 and len(card["coef"]) == len(FEATURES)
    assert fitted.card["neutral"] == 0.1  # the predictor's floor is the one the level was measured after
    for name, tensor in load_checkpoint(start).state_dict.items():
        assert torch.equal(fitted.state_dict[name], tensor), name  # every stored weight kept exactly
    level = _level(fitted.build())  # type: ignore[arg-type]
    np.testing.assert_allclose(level.coef.numpy(), card["coef"], atol=1e-5)
    assert float(level.bias) == pytest.approx(card["bias"], abs=1e-4) and float(level.share) == pytest.approx(0.1)

    assert (
        main(["calibrate", "--fit-level", "--check-set", "calibration", "--weights", str(start)]) == 2
    )  # train photos
    no_head = FusionNetwork(get_preset("test"))
    bare = save_checkpoint(tmp_path / "bare.safetensors", no_head, family="fusion", config=no_head.config, card={})
    assert main(["calibrate", "--fit-level", "--data", str(photos), "--weights", str(bare), "--device", "cpu"]) == 2


def test_the_level_is_part_of_the_exported_graph(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from model.export import export_onnx, max_ab_difference
    from model.onnx_backend import OnnxFusionNetwork

    _, net = _nets(0.7)
    level = _level(net)
    with torch.no_grad():
        features = net.level_features(torch.rand(1, 1, 96, 136))
        coef = np.array([-0.5, 0.1, 0.4, 0.2])
        level.load_fit(coef, 0.6 - float(features[0].numpy() @ coef))  # s = e^0.6 on a photo like these
        level.set_share(0.05)
        factor = float(level.factor(net.level_features(torch.rand(1, 1, 96, 136)))[0])
    assert LIMITS[0] < factor < LIMITS[1] and abs(factor - 1.0) > 0.2
    export_onnx(net, tmp_path / "l.onnx")
    graph = OnnxFusionNetwork.load(tmp_path / "l.onnx")
    assert graph.config.chroma_level and max_ab_difference(net, graph) < 0.01
    assert max_ab_difference(net, graph, 40, 200) < 0.01  # another size: the floor's share is not baked in
