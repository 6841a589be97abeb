"""Colour-quality metrics against hand-computed values on tiny images, and the ``colorize eval`` output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorize.cli import main
from model.evaluation import (
    ab_error_auc,
    colorfulness,
    constant_ab,
    evaluate,
    evaluate_models,
    fit_max_side,
    format_table,
    psnr,
    ssim,
)
from tests.imagegen import colour_photo

GREY = (128, 128, 128)
RED = (255, 0, 0)  # CIE Lab (D65) 53.24, 80.09, 67.20 (Lindbloom)
GREEN = (0, 255, 0)  # a*b* (-86.18, 83.18)
MAGENTA = (255, 0, 255)  # a*b* (98.23, -60.82): 232 a*b* units from green


def pixels(*colours: tuple[int, int, int]) -> np.ndarray:
    return np.array([colours], dtype=np.uint8)  # (1, N, 3)


def test_psnr_hand_computed() -> None:
    truth = np.zeros((2, 2, 3), np.uint8)
    pred = np.full((2, 2, 3), 10, np.uint8)  # MSE = 100
    assert psnr(truth, pred) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-9)  # 28.1308 dB
    assert psnr(truth, truth) == 100.0


def test_ssim_of_flat_images_is_the_luminance_term() -> None:
    # Flat images have no variance, so SSIM reduces to (2xy + C1) / (x^2 + y^2 + C1) with C1 = (0.01 * 255)^2.
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)  # 0.99548
    for side in (7, 3):
        a, b = np.full((side, side, 3), 100, np.uint8), np.full((side, side, 3), 110, np.uint8)
        assert ssim(a, b) == pytest.approx(expected, abs=1e-9)
    photo = colour_photo(16, 16)
    assert ssim(photo, photo) == pytest.approx(1.0)


def test_colorfulness_hand_computed() -> None:
    # rg = R - G = (255, 0), yb = (R + G) / 2 - B = (127.5, -255): σ_rg = 127.5, σ_yb = 191.25,
    # μ_rg = 127.5, μ_yb = -63.75  ->  M = sqrt(127.5² + 191.25²) + 0.3 sqrt(127.5² + 63.75²) = 272.619
    expected = math.sqrt(127.5**2 + 191.25**2) + 0.3 * math.sqrt(127.5**2 + 63.75**2)
    assert colorfulness(pixels(RED, (0, 0, 255))) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(272.619, abs=1e-3)
    assert colorfulness(pixels(GREY, (30, 30, 30))) == 0.0


def test_auc_hand_computed() -> None:
    # Red vs grey: a*b* error sqrt(80.09² + 67.20²) = 104.55, within the thresholds 105..150: 46 of 151.
    assert ab_error_auc(pixels(RED), pixels(GREY)) == pytest.approx(46 / 151, abs=1e-9)
    assert ab_error_auc(pixels(RED, GREY), pixels(RED, GREY)) == 1.0
    # One exact pixel (within every threshold) and one 232 units off (within none): half the area.
    assert ab_error_auc(pixels(GREY, GREEN), pixels(GREY, MAGENTA)) == pytest.approx(0.5)


class GreyColorizer:
    """A stand-in predictor that answers with the input's own L*: the model row must equal greyscale."""

    def colorize_batch(self, images: list) -> list:
        class Out:
            def __init__(self, rgb: np.ndarray) -> None:
                self.rgb = rgb

        return [Out(constant_ab(d.lightness, (0.0, 0.0))) for d in images]


def test_evaluate_rows_and_baselines() -> None:
    flat = np.zeros((8, 10, 3), np.uint8)
    flat[:] = (40, 120, 200)  # one colour everywhere
    photos = [flat, colour_photo(12, 9, seed=3)]
    from model.color import srgb8_to_ab

    mean_ab = tuple(float(v) for v in srgb8_to_ab(flat, torch.float64)[:, 0, 0])  # the flat photo's own a*b*
    report = evaluate(GreyColorizer(), photos, mean_ab, batch_size=1)
    res = report["results"]
    assert set(res) == {"model", "greyscale", "mean_ab", "ground_truth"}
    assert res["model"] == res["greyscale"]
    truth_cf = np.mean([colorfulness(p) for p in photos])
    assert res["ground_truth"]["colorfulness"] == pytest.approx(truth_cf, abs=1e-3)
    assert res["greyscale"]["colorfulness"] == 0.0
    assert res["greyscale"]["delta_cf"] == pytest.approx(truth_cf, abs=1e-3)
    assert res["mean_ab"]["psnr"] > res["greyscale"]["psnr"]
    # The mean a*b* baseline restores the flat photo almost exactly (8-bit rounding only).
    solo = evaluate(GreyColorizer(), [flat], mean_ab)["results"]["mean_ab"]
    assert solo["psnr"] > 45 and solo["auc"] > 0.99 and solo["delta_cf"] < 1.0
    assert "ground truth" in format_table(report)
    both = evaluate_models({"a": GreyColorizer(), "b": GreyColorizer()}, photos, mean_ab)
    assert both["a"] == both["b"] == res["greyscale"]
    with pytest.raises(ValueError, match="must differ"):
        evaluate_models({"greyscale": GreyColorizer()}, photos, mean_ab)


def test_fit_max_side_downscales_only() -> None:
    big = Image.fromarray(colour_photo(300, 150))
    assert fit_max_side(big, 100).shape == (50, 100, 3)
    assert fit_max_side(big, 1000).shape == (150, 300, 3)
    assert fit_max_side(big, None).shape == (150, 300, 3)


def test_eval_cli_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(colour_photo(40, 24 + 8 * i, seed=i)).save(folder / f"{i}.png")
    out = tmp_path / "eval.json"
    assert main(["eval", "--data", str(folder), "--preset", "test", "--device", "cpu", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report) == ["results"]
    assert set(report["results"]) == {"model", "greyscale", "mean_ab", "ground_truth"}
    for row in ("model", "greyscale", "mean_ab"):
        assert set(report["results"][row]) == {"psnr", "ssim", "colorfulness", "delta_cf", "auc"}
        assert all(isinstance(v, float) for v in report["results"][row].values())
    assert set(report["results"]["ground_truth"]) == {"colorfulness"}
    printed = capsys.readouterr().out
    assert "3 images" in printed and "evaluated photos" in printed  # no card: mean a*b* from the photos


def test_eval_cli_rejects_an_empty_split(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text("path,split,label\na.png,train,\n")
    Image.fromarray(colour_photo(16, 16)).save(tmp_path / "a.png")
    assert main(["eval", "--data", str(tmp_path), "--preset", "test", "--device", "cpu"]) == 2
