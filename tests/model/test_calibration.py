"""Chroma gain: the predictor applies it, calibration chooses it on photos, and checkpoints carry it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from colorize.cli import main
from model import Colorizer, PredictorConfig
from model.calibration import calibrate_chroma_gain
from model.checkpoint import load_checkpoint, save_checkpoint
from model.color import rgb_to_lab
from model.compose import ChromaGrid, compose
from model.training.card import card_markdown
from tests.imagegen import colour_photo, gradient


def test_predictor_applies_gain_from_config_and_card(test_colorizer: Any, tmp_path: Path) -> None:
    planes = [gradient(40, 32, seed=1).astype(np.float32) * (100 / 255)]
    base = test_colorizer.predict_chroma(planes)[0].ab.astype(np.float32)
    net = test_colorizer.network
    doubled = Colorizer(net, config=PredictorConfig(chroma_gain=2.0)).predict_chroma(planes)[0].ab
    np.testing.assert_allclose(doubled.astype(np.float32), 2 * base, rtol=2e-3, atol=0.05)
    assert Colorizer(net, config=PredictorConfig(chroma_gain=0.0)).predict_chroma(planes)[0].ab.max() == 0

    # A checkpoint's calibrated gain applies by default; the config overrides it.
    path = save_checkpoint(
        tmp_path / "g.safetensors", net, family="fusion", config=net.config, card={"chroma_gain": 1.5}
    )
    from_card = Colorizer.from_pretrained(path)
    assert from_card.chroma_gain == 1.5 and from_card.info()["chroma_gain"] == 1.5
    from_card_ab = from_card.predict_chroma(planes)[0].ab.astype(np.float32)
    np.testing.assert_allclose(from_card_ab, 1.5 * base, rtol=2e-3, atol=0.05)
    assert Colorizer.from_pretrained(path, config=PredictorConfig(chroma_gain=1.0)).chroma_gain == 1.0

    with pytest.raises(ValueError, match="chroma_gain"):
        PredictorConfig(chroma_gain=5.0)


@dataclass
class _Prediction:
    ab: np.ndarray
    grid: ChromaGrid


class _ScaledTruth:
    """A stand-in model whose a*b* are the photos' own, times ``factor`` (0.5: a washed-out model)."""

    def __init__(self, photos: list[np.ndarray], factor: float) -> None:
        self.photos, self.factor, self.calls = photos, factor, 0
        self.chroma_gain = 1.0
        self.config = PredictorConfig()

    def predict_chroma(self, planes: list[np.ndarray]) -> list[_Prediction]:
        out = []
        for _ in planes:
            rgb = self.photos[self.calls]
            self.calls += 1
            lab = rgb_to_lab(torch.tensor(rgb, dtype=torch.float32).permute(2, 0, 1) / 255.0)
            half = torch.nn.functional.avg_pool2d(lab[None, 1:], 2)[0].numpy()
            out.append(_Prediction(self.factor * self.chroma_gain * half, ChromaGrid(*rgb.shape[:2])))
        return out

    def compose(self, lightness: np.ndarray, prediction: _Prediction) -> np.ndarray:
        """As :meth:`model.Colorizer.compose`: the full-resolution L* with the prediction's chroma. Plain bilinear
        upsampling, so that "exact" chroma stays exact: the guided filter's edge-aware fit scores a touch better
        with a little more gain even on the photos' own a*b*, which is not what these tests are about."""
        return compose(lightness, prediction.ab, prediction.grid, "bilinear")


def _photos() -> list[np.ndarray]:
    return [colour_photo(48, 48, seed=s) for s in range(6)]


def test_calibration_restores_washed_out_colour() -> None:
    photos = _photos()
    result = calibrate_chroma_gain(_ScaledTruth(photos, 0.5), photos, max_psnr_drop=0.5)
    rows = {row["gain"]: row for row in result.rows}
    assert result.images == 6 and 1.8 <= result.gain <= 2.0  # halved chroma: about twice is right
    assert rows[result.gain]["psnr"] > rows[1.0]["psnr"] + 1.0  # and it is closer to the truth
    assert rows[result.gain]["colorfulness"] <= result.truth_colorfulness


def test_calibration_keeps_an_exact_model_at_one() -> None:
    photos = _photos()
    result = calibrate_chroma_gain(_ScaledTruth(photos, 1.0), photos, max_psnr_drop=0.0)
    assert result.gain == 1.0
    # Any PSNR allowance still stops where the output would become more colourful than the photos.
    loose = calibrate_chroma_gain(_ScaledTruth(photos, 1.0), photos, max_psnr_drop=100.0)
    assert loose.gain < 2.0
    assert all(r["colorfulness"] <= loose.truth_colorfulness for r in loose.rows if r["gain"] <= loose.gain)
    with pytest.raises(ValueError, match="no images"):
        calibrate_chroma_gain(_ScaledTruth(photos, 1.0), [])


def test_calibrate_command_stores_gain_in_checkpoint(test_colorizer: Any, tmp_path: Path) -> None:
    folder = tmp_path / "photos" / "train"
    folder.mkdir(parents=True)
    for i in range(5):
        Image.fromarray(colour_photo(40, 40, seed=i)).save(folder / f"{i}.png")
    net = test_colorizer.network
    weights = save_checkpoint(
        tmp_path / "w.safetensors", net, family="fusion", config=net.config, card={"name": "t"}, dtype=torch.float16
    )
    out = tmp_path / "calibrated.safetensors"
    args = ["calibrate", "--data", str(tmp_path / "photos"), "--weights", str(weights), "--out", str(out)]
    assert main(args) == 0
    card = load_checkpoint(out).card
    assert card["name"] == "t" and card["calibration"]["images"] == 5 and card["calibration"]["split"] == "train"
    assert card["chroma_gain"] in [row["gain"] for row in card["calibration"]["rows"]]
    assert load_checkpoint(out).state_dict[next(iter(net.state_dict()))].dtype == torch.float16
    assert "chroma_gain" not in load_checkpoint(weights).card  # the input is untouched with --out
    assert main(["calibrate", "--data", str(tmp_path / "photos"), "--weights", str(weights), "--split", "x"]) == 2


_CARD: dict[str, Any] = {
    "name": "m", "architecture": "a", "family": "fusion", "preset": "tiny", "parameters": 1,
    "data": {"name": "d", "split": "train", "train_images": 3, "labelled_classes": []},
    "recipe": {"optimizer": "o", "loss": "l", "augmentation": "g", "size": 8, "batch_size": 2, "steps": 1,
               "images_seen": 2, "epochs": 1},
    "hardware": "cpu", "time": {"train_minutes": 1}, "mean_ab": [0, 0], "command": "colorize train",
    "chroma_gain": 1.25,
    "calibration": {"split": "train", "images": 3, "max_psnr_drop": 0.5, "truth_colorfulness": 30.0},
}  # fmt: skip


def test_model_card_names_the_gain() -> None:
    card = dict(_CARD)
    assert "**Chroma gain**: 1.25" in card_markdown(card)


def test_commands_take_a_chroma_gain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(gradient(48, 40, seed=3)).save(src)
    common = ["image", str(src), "--preset", "test", "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "grey"), "--chroma-gain", "0"]) == 0
    grey = np.asarray(Image.open(tmp_path / "grey" / "in.png").convert("RGB"), np.int16)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 2  # no chroma left: R = G = B up to rounding
    with pytest.raises(SystemExit) as exit_info:
        main([*common, "--out", str(tmp_path / "x"), "--chroma-gain", "9"])
    assert exit_info.value.code == 2 and "must be within [0, 4]" in capsys.readouterr().err


def test_calibrate_on_the_calibration_check_set(test_colorizer: Any, tmp_path: Path) -> None:
    from model.checkset import CALIBRATION_PHOTOS, NATURAL_PHOTOS, check_set

    photos = check_set("calibration", 64)
    assert len(photos) == 6 * len(CALIBRATION_PHOTOS) and max(max(p.shape[:2]) for _, p in photos) == 64
    assert not {name for name, _ in photos} & set(NATURAL_PHOTOS)  # judged on one set, chosen on the other
    net = test_colorizer.network
    weights = save_checkpoint(tmp_path / "w.safetensors", net, family="fusion", config=net.config, card={"name": "t"})
    args = ["calibrate", "--check-set", "calibration", "--weights", str(weights), "--neutral", "0.1"]
    assert main(args) == 0
    card = load_checkpoint(weights).card
    assert card["calibration"]["check_set"] == "calibration" and card["calibration"]["images"] == 18
    assert card["neutral"] == 0.1 and Colorizer.from_pretrained(weights).neutral == 0.1
    assert "photos of the `calibration` check set" in card_markdown({**_CARD, **card})
    assert main(["calibrate", "--check-set", "nope", "--weights", str(weights)]) == 2
