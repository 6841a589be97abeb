"""The shared predictor: any size and aspect, own luminance kept, batching, style transfer, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model import CheckpointError, Colorizer, PredictorConfig, decode_image
from model.checkpoint import load_checkpoint, save_checkpoint
from model.color import srgb8_to_lightness
from model.config import get_preset
from model.network import FusionNetwork
from tests import imagegen


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (333, 517), (64, 64), (250, 9)])
def test_any_size_keeps_size_and_lightness(test_colorizer: Colorizer, size: tuple[int, int]) -> None:
    grey = Image.fromarray(imagegen.gradient(*size), "L")
    result = test_colorizer.colorize(grey)
    assert result.rgb.shape == (size[1], size[0], 3)
    assert np.abs(srgb8_to_lightness(result.rgb) - result.source.lightness).mean() < 1.0


def test_chroma_is_half_the_padded_resolution(test_colorizer: Colorizer) -> None:
    planes = [np.full((30, 17), 50.0, np.float32), np.full((8, 8), 50.0, np.float32)]
    chroma = test_colorizer.predict_chroma(planes)
    assert chroma[0].ab.shape == (2, 16, 12)
    assert chroma[1].ab.shape == (2, 4, 4)
    assert chroma[0].ab.dtype == np.float16


def test_mixed_sizes_batch_like_single_images(test_colorizer: Colorizer) -> None:
    rng = np.random.default_rng(0)
    planes = [rng.random(s).astype(np.float32) * 100 for s in [(32, 48), (20, 20), (32, 48), (31, 47)]]
    together = test_colorizer.predict_chroma(planes)
    alone = [test_colorizer.predict_chroma([p])[0] for p in planes]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.ab.astype(np.float32), b.ab.astype(np.float32), atol=0.05)


def test_buckets_respect_batch_size_and_pixel_budget() -> None:
    colorizer = Colorizer.from_pretrained(preset="test", config=PredictorConfig(max_batch_size=3))
    planes = [np.zeros((16, 16), np.float32)] * 7 + [np.zeros((17, 16), np.float32)] * 2
    assert sorted(len(b) for b in colorizer._buckets([p.shape for p in planes])) == [1, 2, 3, 3]
    small = Colorizer.from_pretrained(preset="test", config=PredictorConfig(max_batch_pixels=600))
    assert max(len(b) for b in small._buckets([p.shape for p in planes])) == 2


def test_style_transfer_changes_chroma(test_colorizer: Colorizer) -> None:
    target = Image.fromarray(imagegen.gradient(96, 64, seed=1), "L")
    bright = Image.fromarray(np.full((64, 64), 235, np.uint8), "L")
    busy = Image.fromarray(imagegen.gradient(64, 64, seed=7)[::-1].copy(), "L")
    own = test_colorizer.colorize(target)
    a = test_colorizer.colorize(target, style=bright)
    b = test_colorizer.colorize(target, style=busy)

    def ab(img: np.ndarray) -> np.ndarray:
        from model.color import rgb_to_lab

        return rgb_to_lab(torch.from_numpy(img).permute(2, 0, 1).float() / 255)[1:].numpy()

    assert np.abs(ab(a.rgb) - ab(b.rgb)).mean() > 0.5  # measurably different chroma
    # Both keep the target's luminance.
    for r in (own, a, b):
        assert np.abs(srgb8_to_lightness(r.rgb) - own.source.lightness).mean() < 1.0


def test_labels_come_back_as_metadata(tmp_path: Path) -> None:
    names = tuple(f"scene{i}" for i in range(8))
    net = FusionNetwork(get_preset("test", class_names=names))
    path = save_checkpoint(
        tmp_path / "c.safetensors", net, family="fusion", config=net.config, card={"name": "t"}
    )
    colorizer = Colorizer.from_pretrained(path)
    labels = colorizer.colorize(Image.new("L", (16, 16), 90)).labels
    assert len(labels) == 3 and all(name in names for name, _ in labels)
    assert labels[0][1] >= labels[1][1] >= labels[2][1]


def test_checkpoint_round_trip_fp16(tmp_path: Path) -> None:
    net = FusionNetwork(get_preset("test")).eval()
    path = save_checkpoint(
        tmp_path / "w.safetensors",
        net,
        family="fusion",
        config=net.config,
        card={"x": 1},
        dtype=torch.float16,
    )
    ckpt = load_checkpoint(path)
    assert ckpt.card == {"x": 1} and ckpt.config == net.config
    assert all(t.dtype == torch.float16 for t in ckpt.state_dict.values() if t.is_floating_point())
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(ckpt.build().eval()(x)[0], net(x)[0], atol=2e-3)
    assert Colorizer.from_pretrained(path).trained


def test_bad_checkpoints_raise_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        Colorizer.from_pretrained(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        Colorizer.from_pretrained(junk)


def test_untrained_network_is_flagged() -> None:
    colorizer = Colorizer.from_pretrained(preset="test")
    assert colorizer.trained is False and colorizer.info()["trained"] is False
    # The same seed everywhere: two untrained predictors agree.
    again = Colorizer.from_pretrained(preset="test")
    plane = [np.full((16, 16), 40.0, np.float32)]
    np.testing.assert_array_equal(colorizer.predict_chroma(plane)[0].ab, again.predict_chroma(plane)[0].ab)


def test_guided_upsampling_keeps_lightness() -> None:
    colorizer = Colorizer.from_pretrained(preset="test", config=PredictorConfig(upsample="guided"))
    result = colorizer.colorize(imagegen.grey_jpeg(64, 40))
    assert np.abs(srgb8_to_lightness(result.rgb) - result.source.lightness).mean() < 1.0


def test_alpha_survives(test_colorizer: Colorizer) -> None:
    result = test_colorizer.colorize(imagegen.rgba_png())
    assert result.to_pil().mode == "RGBA"
    assert np.array_equal(
        np.asarray(result.to_pil().getchannel("A")), decode_image(imagegen.rgba_png()).alpha
    )


@pytest.mark.gpu
def test_cuda_bf16_matches_cpu() -> None:
    cpu = Colorizer.from_pretrained(preset="tiny", config=PredictorConfig(device="cpu"))
    gpu = Colorizer.from_pretrained(preset="tiny", config=PredictorConfig(device="cuda"))
    plane = [np.linspace(0, 100, 64 * 48, dtype=np.float32).reshape(48, 64)]
    diff = np.abs(
        cpu.predict_chroma(plane)[0].ab.astype(float) - gpu.predict_chroma(plane)[0].ab.astype(float)
    )
    assert diff.mean() < 2.0
