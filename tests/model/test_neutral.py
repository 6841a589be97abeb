"""The neutral floor: a tint shared by a whole prediction is removed, colours that vary are kept."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch

from colorize.cli import main
from model import Colorizer, PredictorConfig
from model.neutral import neutral_floor
from tests.imagegen import colour_photo


def test_a_tint_over_everything_is_removed() -> None:
    torch.manual_seed(0)
    objects = torch.zeros(1, 2, 64, 64)
    objects[:, :, :32] = torch.tensor([-20.0, -30.0]).view(1, 2, 1, 1)  # a blue half (sky)
    tint = torch.tensor([4.0, 18.0]).view(1, 2, 1, 1)  # a yellow-orange cast over everything
    out = neutral_floor(objects + tint, 0.1)
    assert out[:, :, 40:].abs().max() < 1e-4  # the half that should be grey is grey again
    assert torch.allclose(out[:, :, :32], objects[:, :, :32], atol=1e-4)  # the sky keeps its colour


def test_a_picture_with_neutral_areas_is_unchanged_and_images_are_independent() -> None:
    ab = torch.zeros(2, 2, 32, 32)
    ab[0, :, :16] = torch.tensor([30.0, 10.0]).view(2, 1, 1)  # half red, half neutral: nothing to remove
    ab[1] += torch.tensor([0.0, 12.0]).view(2, 1, 1)  # all tinted
    out = neutral_floor(ab, 0.2)
    assert torch.equal(out[0], ab[0]) and out[1].abs().max() < 1e-4
    assert torch.equal(neutral_floor(ab, 0.0), ab)
    with pytest.raises(ValueError, match="neutral share"):
        neutral_floor(ab, 0.9)


def test_predictor_applies_the_card_value_or_the_override(test_colorizer: Any) -> None:
    plane = np.linspace(20, 80, 48 * 40, dtype=np.float32).reshape(48, 40)
    net = copy.deepcopy(test_colorizer.network)
    with torch.no_grad():  # a constant output bias: the untrained network then tints everything yellow
        net.colorization.layers[-2].bias.copy_(torch.tensor([0.0, 0.6]))
    plain = Colorizer(net, config=PredictorConfig(neutral=0.0)).predict_chroma([plane])[0].ab.astype(np.float32)
    fixed = Colorizer(net, config=PredictorConfig(neutral=0.2)).predict_chroma([plane])[0].ab.astype(np.float32)
    magnitude = np.hypot(fixed[0], fixed[1])
    assert np.percentile(magnitude, 10) < np.percentile(np.hypot(plain[0], plain[1]), 10)
    assert Colorizer(net, card={"neutral": 0.1}).neutral == 0.1
    assert Colorizer(net, card={"neutral": 0.1}, config=PredictorConfig(neutral=0.0)).neutral == 0.0
    with pytest.raises(ValueError, match="neutral"):
        PredictorConfig(neutral=0.7)


def test_image_command_takes_neutral(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(colour_photo(40, 32)).convert("L").save(src)
    args = ["image", str(src), "--out", str(tmp_path / "out"), "--preset", "test", "--device", "cpu"]
    assert main([*args, "--neutral", "0.1"]) == 0
    with pytest.raises(SystemExit):
        main([*args, "--neutral", "2"])
    assert "neutral" in capsys.readouterr().err
