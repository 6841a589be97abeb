"""Colour-quality metrics against hand-computed values on tiny images, and the ``colorize eval`` output."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorize.cli import main
from model.color import srgb8_to_lightness
from model.evaluation import constant_ab, evaluate, evaluate_models, format_table, markdown_sources, mean_ab_of
from model.metrics import ab_error_auc, colorfulness, is_greyscale, psnr, ssim
from model.photos import fit_max_side
from tests.imagegen import colour_photo, encode

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
    assert set(report) == {"results", "images", "skipped_greyscale", "sources"}
    assert report["images"] == 3 and report["skipped_greyscale"] == 0
    assert report["sources"] == {}  # photos directly in the folder name no source: the overall rows only
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


class TintColorizer:
    """A stand-in predictor that paints one a*b* everywhere, so its row differs from both baselines."""

    AB = (20.0, -10.0)

    def colorize_batch(self, images: list) -> list:
        class Out:
            def __init__(self, rgb: np.ndarray) -> None:
                self.rgb = rgb

        return [Out(constant_ab(d.lightness, self.AB)) for d in images]


def grey_photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A greyscale photo stored as RGB (R = G = B), as scans of black-and-white prints often are."""
    from tests.imagegen import gradient

    return np.repeat(gradient(width, height, seed)[..., None], 3, axis=2)


def by_hand(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    cf = colorfulness(pred)
    return {
        "psnr": psnr(truth, pred),
        "ssim": ssim(truth, pred),
        "colorfulness": cf,
        "delta_cf": abs(cf - colorfulness(truth)),
        "auc": ab_error_auc(truth, pred),
    }


def test_is_greyscale_allows_compression_noise_not_colour() -> None:
    grey = grey_photo(40, 32)
    assert is_greyscale(grey)
    jpeg = np.asarray(Image.open(io.BytesIO(encode(Image.fromarray(grey), "JPEG", quality=70))).convert("RGB"))
    assert is_greyscale(jpeg)
    assert not is_greyscale(colour_photo(40, 32))
    sepia = (grey.astype(np.float32) * (1.0, 0.85, 0.65)).astype(np.uint8)  # a toned print is colour
    assert not is_greyscale(sepia)


def test_per_source_rows_and_greyscale_skip_match_hand_computed_metrics() -> None:
    sky, field = colour_photo(16, 12, seed=1), colour_photo(10, 14, seed=2)
    photos = [("sky", sky), ("field", field), ("sky", grey_photo(16, 12))]
    mean_ab = (3.0, 5.0)
    report = evaluate(TintColorizer(), photos, mean_ab, batch_size=2)
    assert report["skipped_greyscale"] == 1 and report["images"] == 2
    assert list(report["sources"]) == ["field", "sky"]
    expected = {}
    for name, truth in (("sky", sky), ("field", field)):
        plane = srgb8_to_lightness(truth)
        rows = {
            "model": by_hand(truth, constant_ab(plane, TintColorizer.AB)),
            "greyscale": by_hand(truth, constant_ab(plane, (0.0, 0.0))),
            "mean_ab": by_hand(truth, constant_ab(plane, mean_ab)),
        }
        expected[name] = rows
        entry = report["sources"][name]
        assert entry["images"] == 1
        for row, metrics in rows.items():
            assert entry["results"][row] == pytest.approx(metrics, abs=1e-4)
        assert entry["results"]["ground_truth"]["colorfulness"] == pytest.approx(colorfulness(truth), abs=1e-4)
    for row in ("model", "greyscale", "mean_ab"):  # overall = the mean of the two colour photos
        for metric in ("psnr", "ssim", "colorfulness", "delta_cf", "auc"):
            mean = (expected["sky"][row][metric] + expected["field"][row][metric]) / 2
            assert report["results"][row][metric] == pytest.approx(mean, abs=1e-4)
    assert report["results"]["greyscale"]["psnr"] < 40  # the skipped grey truth's capped 100 dB is not in it
    text = format_table(report)
    assert "per source" in text and "1 photo(s) with a greyscale ground truth skipped" in text
    assert "| sky | 1 |" in markdown_sources(report) and "| **all** | 2 |" in markdown_sources(report)


def test_only_greyscale_truths_is_an_error_and_mean_ab_ignores_them() -> None:
    with pytest.raises(ValueError, match="2 greyscale skipped"):
        evaluate(TintColorizer(), [grey_photo(8, 8), grey_photo(9, 9, seed=1)], (0.0, 0.0))
    flat = np.zeros((4, 4, 3), np.uint8)
    flat[:] = (40, 120, 200)
    from model.color import srgb8_to_ab

    own = srgb8_to_ab(flat, torch.float64)[:, 0, 0]
    assert mean_ab_of([flat, grey_photo(8, 8)]) == pytest.approx(tuple(own), abs=1e-3)


def test_eval_cli_per_source_rows_from_manifest_and_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = ["path,split,label,source"]
    for i, source in enumerate(("scenes", "scenes", "pets", "pets")):
        Image.fromarray(colour_photo(24, 24, seed=i)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,val,,{source}")
    Image.fromarray(grey_photo(24, 24)).save(tmp_path / "grey.png")
    rows.append("grey.png,val,,pets")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "eval.json"
    args = ["eval", "--data", str(tmp_path), "--preset", "test", "--device", "cpu", "--json", str(out)]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["images"] == 4 and report["skipped_greyscale"] == 1
    assert {k: v["images"] for k, v in report["sources"].items()} == {"pets": 2, "scenes": 2}
    printed = capsys.readouterr().out
    assert "per source" in printed and "1 photo(s) with a greyscale ground truth skipped" in printed

    folder = tmp_path / "tree"
    for sub, seed in (("beach", 5), ("beach", 6), ("city", 7)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(colour_photo(16, 24, seed=seed)).save(folder / sub / f"{seed}.png")
    assert main(["eval", "--data", str(folder), "--preset", "test", "--device", "cpu", "--json", str(out)]) == 0
    assert {k: v["images"] for k, v in json.loads(out.read_text())["sources"].items()} == {"beach": 2, "city": 1}

    greys = tmp_path / "greys"
    greys.mkdir()
    Image.fromarray(grey_photo(16, 16)).save(greys / "g.png")
    assert main(["eval", "--data", str(greys), "--preset", "test", "--device", "cpu"]) == 2  # nothing to measure
    assert "1 greyscale skipped" in capsys.readouterr().err


def test_natural_check_set_is_deterministic_and_outside_the_pack() -> None:
    from model.checkset import NATURAL_PHOTOS, check_set

    photos = check_set("natural", max_side=128)
    assert len(photos) == 6 * len(NATURAL_PHOTOS) == 24
    assert [name for name, _ in photos[::6]] == list(NATURAL_PHOTOS)
    assert all(max(rgb.shape[:2]) <= 128 and rgb.dtype == np.uint8 and not is_greyscale(rgb) for _, rgb in photos)
    again = check_set("natural", max_side=128)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(photos, again, strict=True))
    with pytest.raises(ValueError, match="unknown check set"):
        check_set("nope")


def test_eval_cli_check_set_beside_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(colour_photo(32, 24)).save(folder / "a.png")
    out = tmp_path / "eval.json"
    base = ["eval", "--preset", "test", "--device", "cpu", "--max-side", "64", "--json", str(out)]
    assert main([*base, "--data", str(folder), "--check-set", "natural"]) == 0
    report = json.loads(out.read_text())
    natural = report["check_sets"]["natural"]
    assert report["images"] == 1 and natural["images"] == 24 and natural["skipped_greyscale"] == 0
    assert sorted(natural["sources"]) == ["astronaut", "chelsea", "coffee", "rocket"]
    printed = capsys.readouterr().out
    assert "'natural' check set, 24 images" in printed
    assert main([*base, "--check-set", "natural"]) == 0  # the check set alone
    assert json.loads(out.read_text())["images"] == 24
    assert main(["eval", "--preset", "test", "--device", "cpu"]) == 2  # neither: a usage error
