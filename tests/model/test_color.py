"""Colour conversions against published reference values (Lindbloom / CIE, D65, 2°) and round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import color

# sRGB 8-bit -> CIE Lab (D65) reference values.
REFERENCE = [
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((128, 128, 128), (53.5850, 0.0, 0.0)),
    ((255, 255, 0), (97.1393, -21.5537, 94.4780)),
    ((0, 255, 255), (91.1132, -48.0875, -14.1312)),
    ((255, 0, 255), (60.3242, 98.2343, -60.8249)),
]


def _pixel(rgb: tuple[int, int, int], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(rgb, dtype=dtype).view(3, 1, 1) / 255.0


@pytest.mark.parametrize(("rgb", "lab"), REFERENCE)
def test_rgb_to_lab_matches_reference(rgb: tuple[int, int, int], lab: tuple[float, float, float]) -> None:
    got = color.rgb_to_lab(_pixel(rgb)).flatten().tolist()
    assert got == pytest.approx(lab, abs=0.05)


@pytest.mark.parametrize(("rgb", "lab"), REFERENCE)
def test_lab_to_rgb_matches_reference(rgb: tuple[int, int, int], lab: tuple[float, float, float]) -> None:
    got = color.lab_to_rgb(torch.tensor(lab, dtype=torch.float64).view(3, 1, 1)).flatten() * 255
    assert got.tolist() == pytest.approx(list(rgb), abs=0.05)


def test_xyz_reference() -> None:
    # sRGB red in XYZ (D65): the first column of the sRGB matrix.
    xyz = color.linear_to_xyz(color.srgb_to_linear(_pixel((255, 0, 0)))).flatten().tolist()
    assert xyz == pytest.approx([0.4124564, 0.2126729, 0.0193339], abs=1e-6)


def test_round_trips_within_1e3() -> None:
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(4, 3, 17, 23, generator=gen, dtype=torch.float32)
    lab = color.rgb_to_lab(rgb)
    assert (color.lab_to_rgb(lab) - rgb).abs().max() < 1e-3
    linear = color.srgb_to_linear(rgb)
    assert (color.linear_to_srgb(linear) - rgb).abs().max() < 1e-3
    xyz = color.linear_to_xyz(linear)
    assert (color.xyz_to_linear(xyz) - linear).abs().max() < 1e-3
    assert (color.lab_to_xyz(color.xyz_to_lab(xyz)) - xyz).abs().max() < 1e-3
    ab = lab[:, 1:]
    assert (color.denormalize_ab(color.normalize_ab(ab)) - ab).abs().max() < 1e-3


def test_conversions_are_differentiable_without_nans() -> None:
    rgb = torch.tensor([0.0, 0.02, 0.5, 1.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2).clone().requires_grad_()
    color.rgb_to_lab(rgb).sum().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all()
    lab = torch.tensor([[0.0, 50.0], [75.0, 100.0]]).view(1, 1, 2, 2)
    lab = torch.cat((lab, torch.full((1, 2, 2, 2), 20.0)), dim=1).requires_grad_()
    color.lab_to_rgb(lab).sum().backward()
    assert lab.grad is not None and torch.isfinite(lab.grad).all()


def test_normalised_ab_spans_the_sigmoid_range() -> None:
    assert color.normalize_ab(torch.tensor([-color.AB_RANGE, 0.0, color.AB_RANGE])).tolist() == [
        0.0,
        0.5,
        1.0,
    ]


def test_batched_and_unbatched_agree() -> None:
    rgb = torch.rand(2, 3, 5, 7)
    assert torch.allclose(color.rgb_to_lab(rgb)[1], color.rgb_to_lab(rgb[1]))


def test_lightness_lookup_matches_full_conversion() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    full = color.rgb_to_lab(torch.from_numpy(pixels).permute(2, 0, 1).double() / 255.0)[0].numpy()
    assert np.abs(color.srgb8_to_lightness(pixels) - full).max() < 1e-3
    grey = pixels[..., 0]
    full_grey = color.rgb_to_lab(torch.from_numpy(grey).double().expand(3, 9, 11) / 255.0)[0].numpy()
    assert np.abs(color.srgb8_to_lightness(grey) - full_grey).max() < 1e-3
    assert np.abs(color.srgb_float_to_lightness(grey / 255.0) - full_grey).max() < 1e-3


@pytest.mark.gpu
def test_conversions_on_cuda() -> None:
    rgb = torch.rand(2, 3, 8, 8, device="cuda")
    assert torch.allclose(color.rgb_to_lab(rgb).cpu(), color.rgb_to_lab(rgb.cpu()), atol=1e-3)


def test_gamut_mapping_keeps_lightness() -> None:
    lightness = torch.linspace(2, 98, 50).view(1, 5, 10)
    ab = torch.full((2, 5, 10), 120.0)  # far outside sRGB for most L*
    lab = torch.cat((lightness, ab))
    rgb = color.lab_to_rgb_keep_lightness(lab)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    back = color.rgb_to_lab(rgb)
    assert (back[0] - lightness[0]).abs().max() < 0.5
    assert (back[1:] ** 2).sum(0).sqrt().mean() > 10  # still coloured, not greyed out
    in_gamut = color.rgb_to_lab(torch.rand(3, 4, 4))
    assert torch.allclose(color.lab_to_rgb_keep_lightness(in_gamut), color.lab_to_rgb(in_gamut), atol=1e-5)


def test_srgb8_output_matches_float_conversion() -> None:
    lab = color.rgb_to_lab(torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(3)))
    lab = torch.cat((lab[:1], lab[1:] * 1.5))  # push some pixels out of gamut
    exact = (color.lab_to_rgb_keep_lightness(lab).permute(1, 2, 0) * 255 + 0.5).floor().numpy()
    fast = color.lab_to_srgb8(lab).astype(np.float64)
    assert np.abs(fast - exact).max() <= 1.0
    assert np.abs(color.srgb8_to_lightness(color.lab_to_srgb8(lab)) - lab[0].numpy()).mean() < 0.3
