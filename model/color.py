"""Colour science in torch: sRGB <-> linear RGB <-> XYZ (D65) <-> CIE Lab.

Pure, batched, device-agnostic and differentiable. Image tensors hold channels on dim -3, so ``(3, H, W)``,
``(B, 3, H, W)`` and ``(3, 1, 1)`` pixels all work. sRGB values are floats in [0, 1]; L* is in [0, 100].
Nothing else in the project converts colour spaces: the decoder, predictor, trainer and evaluator all call here.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

# IEC 61966-2-1 sRGB primaries with a D65 white point (Lindbloom's matrices).
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
D65_WHITE = (0.95047, 1.0, 1.08883)

_EPS = (6.0 / 29.0) ** 3  # CIE's epsilon, 216/24389
_KAPPA_INV = 1.0 / (3.0 * (6.0 / 29.0) ** 2)

# a*b* normalisation for the network's sigmoid output: [-AB_RANGE, AB_RANGE] <-> [0, 1].
AB_RANGE = 128.0


_XYZ_TO_RGB = tuple(tuple(row) for row in torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64)).tolist())


def _matrix(values: tuple[tuple[float, ...], ...], like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def _apply_matrix(m: Tensor, x: Tensor) -> Tensor:
    # x: (..., 3, H, W) -> the same shape, each pixel multiplied by m (one matmul over flattened pixels).
    shape = x.shape
    flat = x.reshape(*shape[:-2], shape[-2] * shape[-1])
    return torch.matmul(m, flat).reshape(shape)


def srgb_to_linear(rgb: Tensor) -> Tensor:
    """Undo the sRGB transfer curve."""
    low = rgb / 12.92
    high = ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(rgb <= 0.04045, low, high)


def linear_to_srgb(linear: Tensor) -> Tensor:
    """Apply the sRGB transfer curve."""
    low = linear * 12.92
    high = 1.055 * linear.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055
    return torch.where(linear <= 0.0031308, low, high)


def linear_to_xyz(linear: Tensor) -> Tensor:
    return _apply_matrix(_matrix(_RGB_TO_XYZ, linear), linear)


def xyz_to_linear(xyz: Tensor) -> Tensor:
    return _apply_matrix(_matrix(_XYZ_TO_RGB, xyz), xyz)


def _f(t: Tensor) -> Tensor:
    return torch.where(t > _EPS, t.clamp(min=_EPS) ** (1.0 / 3.0), t * _KAPPA_INV + 4.0 / 29.0)


def _f_inv(t: Tensor) -> Tensor:
    return torch.where(t > 6.0 / 29.0, t**3, (t - 4.0 / 29.0) / _KAPPA_INV)


def xyz_to_lab(xyz: Tensor) -> Tensor:
    white = torch.tensor(D65_WHITE, dtype=xyz.dtype, device=xyz.device).view(3, 1, 1)
    fx, fy, fz = _f(xyz / white).unbind(dim=-3)
    lightness = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack((lightness, a, b), dim=-3)


def lab_to_xyz(lab: Tensor) -> Tensor:
    lightness, a, b = lab.unbind(dim=-3)
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    white = torch.tensor(D65_WHITE, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    return torch.stack((_f_inv(fx), _f_inv(fy), _f_inv(fz)), dim=-3) * white


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB in [0, 1] -> CIE Lab (D65)."""
    return xyz_to_lab(linear_to_xyz(srgb_to_linear(rgb)))


def lab_to_rgb(lab: Tensor, clip: bool = True) -> Tensor:
    """CIE Lab (D65) -> sRGB; out-of-gamut values are clipped to [0, 1] unless ``clip`` is False."""
    linear = xyz_to_linear(lab_to_xyz(lab))
    if clip:
        return linear_to_srgb(linear.clamp(0.0, 1.0))
    return linear_to_srgb(linear)  # negative light stays negative (linear branch), so gamut tests see it


def _lab_to_linear(lab: Tensor) -> Tensor:
    return xyz_to_linear(lab_to_xyz(lab))


def _fit_gamut(lab: Tensor, linear: Tensor, steps: int) -> Tensor:
    """Linear RGB of ``lab`` ``(3, H, W)`` with out-of-gamut pixels brought inside by scaling their a*b* down
    (bisection), which keeps L*; clipping channels instead would change L*."""
    tol = 0.5 / 255.0 / 12.92  # half an 8-bit step at the dark end of the sRGB curve
    outside = ((linear < -tol) | (linear > 1.0 + tol)).any(dim=-3)  # (H, W)
    if bool(outside.any()):
        pixels = lab[..., outside]  # (3, N)
        lightness, ab = pixels[:1], pixels[1:]
        lo = torch.zeros_like(lightness)
        hi = torch.ones_like(lightness)
        for _ in range(steps):
            mid = (lo + hi) * 0.5
            trial = _lab_to_linear(torch.cat((lightness, ab * mid))[:, :, None])[:, :, 0]
            fits = ((trial >= -tol) & (trial <= 1.0 + tol)).all(dim=0, keepdim=True)
            lo = torch.where(fits, mid, lo)
            hi = torch.where(fits, hi, mid)
        linear = linear.clone()
        linear[..., outside] = _lab_to_linear(torch.cat((lightness, ab * lo))[:, :, None])[:, :, 0]
    return linear.clamp(0.0, 1.0)


def lab_to_rgb_keep_lightness(lab: Tensor, steps: int = 7) -> Tensor:
    """CIE Lab ``(3, H, W)`` -> sRGB in [0, 1], out-of-gamut colours brought into gamut by reducing chroma
    instead of clipping channels, so the result keeps the given L*."""
    return linear_to_srgb(_fit_gamut(lab, _lab_to_linear(lab), steps))


_LUT_SIZE = 16384  # linear-light steps; fine enough that 8-bit sRGB output is off by < 0.3 levels


@functools.lru_cache(maxsize=1)
def _linear_to_srgb8_lut() -> np.ndarray:
    levels = torch.linspace(0.0, 1.0, _LUT_SIZE, dtype=torch.float64)
    return (linear_to_srgb(levels) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def lab_to_srgb8(lab: Tensor, steps: int = 7) -> np.ndarray:
    """CIE Lab ``(3, H, W)`` -> 8-bit sRGB ``(H, W, 3)``, keeping L* (see :func:`lab_to_rgb_keep_lightness`).

    The image form of :func:`lab_to_srgb8_pixels` (the sRGB transfer curve through a lookup table: the same maths
    as :func:`linear_to_srgb`); only the 8-bit image leaves the device.
    """
    height, width = lab.shape[-2:]
    return lab_to_srgb8_pixels(lab.reshape(3, -1), steps).reshape(height, width, 3).cpu().numpy()


def _fit_gamut_everywhere(lab: Tensor, linear: Tensor, steps: int) -> Tensor:
    """:func:`_fit_gamut` for ``(3, N)`` pixels without data-dependent indexing: every pixel runs the same
    bisection steps (in-gamut ones keep scale 1), so a GPU never waits for the host to count outliers."""
    tol = 0.5 / 255.0 / 12.92
    inside = ((linear >= -tol) & (linear <= 1.0 + tol)).all(dim=0, keepdim=True)
    lightness, ab = lab[:1], lab[1:]
    lo = torch.where(inside, torch.ones_like(lightness), torch.zeros_like(lightness))
    hi = torch.ones_like(lightness)
    for _ in range(steps):
        mid = (lo + hi) * 0.5
        trial = _lab_to_linear(torch.cat((lightness, ab * mid))[:, :, None])[:, :, 0]
        fits = ((trial >= -tol) & (trial <= 1.0 + tol)).all(dim=0, keepdim=True) | inside
        lo = torch.where(fits, mid, lo)
        hi = torch.where(fits, hi, mid)
    lo = torch.where(inside, torch.ones_like(lo), lo)
    fitted = _lab_to_linear(torch.cat((lightness, ab * lo))[:, :, None])[:, :, 0]
    return torch.where(inside, linear, fitted).clamp(0.0, 1.0)


def lab_to_srgb8_pixels(lab: Tensor, steps: int = 7) -> Tensor:
    """CIE Lab pixels ``(3, N)`` -> 8-bit sRGB ``(N, 3)`` uint8 on the same device, keeping L* (the batched
    form of :func:`lab_to_srgb8`; on a GPU without any host synchronisation)."""
    lab = lab.float()
    linear = _lab_to_linear(lab[:, :, None])[:, :, 0]
    if lab.device.type == "cpu":
        linear = _fit_gamut(lab[:, :, None], linear[:, :, None], steps)[:, :, 0]
    else:
        linear = _fit_gamut_everywhere(lab, linear, steps)
    index = (linear.t() * (_LUT_SIZE - 1) + 0.5).long()
    return linear_to_srgb8_lut(lab.device)[index]


def linear_to_srgb8_lut(device: torch.device | str = "cpu") -> Tensor:
    """The linear-light -> 8-bit sRGB table (``_LUT_SIZE`` entries) as a tensor on ``device``."""
    return _lut_on(str(device))


@functools.lru_cache(maxsize=8)
def _lut_on(device: str) -> Tensor:
    return torch.from_numpy(_linear_to_srgb8_lut()).to(device)


def lightness_from_luminance(y: Tensor) -> Tensor:
    """Relative luminance Y (white = 1) -> L*."""
    return 116.0 * _f(y) - 16.0


def normalize_ab(ab: Tensor) -> Tensor:
    """a*b* in [-AB_RANGE, AB_RANGE] -> [0, 1], the range of the network's sigmoid output."""
    return (ab / AB_RANGE + 1.0) * 0.5


def denormalize_ab(ab_norm: Tensor) -> Tensor:
    return (ab_norm * 2.0 - 1.0) * AB_RANGE


def normalize_lightness(lightness: Tensor) -> Tensor:
    """L* in [0, 100] -> [0, 1], the network's input range."""
    return lightness / 100.0


@functools.lru_cache(maxsize=1)
def _srgb8_linear_lut() -> np.ndarray:
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    return srgb_to_linear(levels).numpy().astype(np.float32)


def srgb8_to_ab(rgb: np.ndarray, dtype: torch.dtype = torch.float32) -> np.ndarray:
    """a*b* ``(2, H, W)`` of an 8-bit sRGB image ``(H, W, 3)`` (metrics compare chroma this way)."""
    lab = rgb_to_lab(torch.tensor(rgb, dtype=dtype).permute(2, 0, 1) / 255.0)  # a copy: inputs may be read-only
    return lab[1:].numpy()


def srgb8_to_lightness(pixels: np.ndarray) -> np.ndarray:
    """L* of 8-bit sRGB pixels, ``(H, W, 3)`` RGB or ``(H, W)`` grey, as float32 ``(H, W)``.

    The same maths as :func:`rgb_to_lab`, through a 256-entry table, which is several times faster on a CPU
    than converting the whole image (only L* is needed to colorize).
    """
    if pixels.ndim != 3:  # grey: R = G = B and the Y row sums to 1, so L* is a function of the level alone
        return _srgb8_lightness_lut()[pixels]
    y = _srgb8_linear_lut()[pixels] @ np.asarray(_RGB_TO_XYZ[1], dtype=np.float32)
    return lightness_from_luminance(torch.from_numpy(np.ascontiguousarray(y))).numpy()


@functools.lru_cache(maxsize=1)
def _srgb8_lightness_lut() -> np.ndarray:
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    return lightness_from_luminance(srgb_to_linear(levels)).numpy().astype(np.float32)


def srgb_float_to_lightness(pixels: np.ndarray) -> np.ndarray:
    """L* of float sRGB in [0, 1] (high bit depth inputs), ``(H, W, 3)`` or ``(H, W)``."""
    t = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
    linear = srgb_to_linear(t)
    if linear.ndim == 3:
        y = linear @ torch.tensor(_RGB_TO_XYZ[1], dtype=torch.float32)
    else:
        y = linear
    return lightness_from_luminance(y).numpy()
