"""The CPU recombination kernel: one fused pass over the pixels of an image (see :mod:`model.compose`).

For each output pixel: bilinear samples of the chroma planes (a*b*, or guided-filter coefficients applied to
the pixel's own L*), CIE Lab -> linear sRGB, a bisection on the chroma scale only where the colour falls
outside the gamut (L* is kept), and the sRGB transfer curve through the same lookup table as
:func:`model.color.lab_to_srgb8`. Compiled once per machine by numba (cached beside this file, or in numba's
user cache) and run over rows in parallel with as many threads as torch uses.

numba is a core dependency; where it cannot be imported (an accelerator host's image without it) the torch
implementation in :mod:`model.compose` is used instead, with the same results within one 8-bit level.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from model.color import _XYZ_TO_RGB, D65_WHITE, _linear_to_srgb8_lut

numba: Any
try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised on hosts without numba
    numba = None
else:
    if "NUMBA_THREADING_LAYER" not in os.environ:
        # numba's own thread pool, not OpenMP: torch's OpenMP threads spin after each parallel region, and two
        # OpenMP pools spinning on a small machine starve each other (measured: the kernel and the guided
        # filter's box sums both slowed 2x with numba on OpenMP beside torch).
        numba.config.THREADING_LAYER = "workqueue"

GAMUT_STEPS = 7  # bisection steps on the chroma scale: 1/128 of the predicted chroma, as lab_to_srgb8 uses
_LOCK = threading.Lock()  # numba's default thread pool runs one parallel kernel at a time
_MATRIX = np.asarray(_XYZ_TO_RGB, dtype=np.float32)
_WX, _WZ = float(D65_WHITE[0]), float(D65_WHITE[2])


def available() -> bool:
    return numba is not None


if numba is not None:

    @njit(cache=True, fastmath=True, inline="always")
    def _f_inv(t: float) -> float:
        if t > 6.0 / 29.0:
            return t * t * t
        return (t - 4.0 / 29.0) * (3.0 * (6.0 / 29.0) ** 2)

    @njit(cache=True, fastmath=True, inline="always")
    def _linear(lightness: float, a: float, b: float, m: Any) -> tuple[float, float, float]:
        fy = (lightness + 16.0) / 116.0
        x = _WX * _f_inv(fy + a / 500.0)
        y = _f_inv(fy)
        z = _WZ * _f_inv(fy - b / 200.0)
        return (
            m[0, 0] * x + m[0, 1] * y + m[0, 2] * z,
            m[1, 0] * x + m[1, 1] * y + m[1, 2] * z,
            m[2, 0] * x + m[2, 1] * y + m[2, 2] * z,
        )

    @njit(cache=True, fastmath=True, inline="always")
    def _inside(r: float, g: float, b: float, tol: float) -> bool:
        return -tol <= r <= 1.0 + tol and -tol <= g <= 1.0 + tol and -tol <= b <= 1.0 + tol

    @njit(cache=True, fastmath=True, inline="always")
    def _bilerp(
        p: Any, k: int, y0: int, y1: int, x0: int, x1: int, w00: float, w01: float, w10: float, w11: float
    ) -> float:
        return w00 * p[k, y0, x0] + w01 * p[k, y0, x1] + w10 * p[k, y1, x0] + w11 * p[k, y1, x1]

    @njit(cache=True)
    def _axis(n: int, scale: float, size: int) -> tuple[Any, Any, Any]:
        """Left/right sample indices and weights along one axis, clamped at the edges."""
        lo, hi, w = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float32)
        for i in range(n):
            f = min(max((i + 0.5) * scale - 0.5, 0.0), size - 1.0)
            j = int(f)
            lo[i], hi[i], w[i] = j, min(j + 1, size - 1), f - j
        return lo, hi, w

    @njit(cache=True, fastmath=True, parallel=True)
    def _compose(lum: Any, planes: Any, sy: float, sx: float, m: Any, lut: Any, steps: int, out: Any) -> None:
        height, width = lum.shape
        guided = planes.shape[0] == 4
        y0s, y1s, wys = _axis(height, sy, planes.shape[1])
        x0s, x1s, wxs = _axis(width, sx, planes.shape[2])
        top = lut.shape[0] - 1
        tol = 0.5 / 255.0 / 12.92
        for y in prange(height):
            y0, y1, wy = y0s[y], y1s[y], wys[y]
            for x in range(width):
                x0, x1, wx = x0s[x], x1s[x], wxs[x]
                w00, w01, w10, w11 = (1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx
                light = lum[y, x]
                a = _bilerp(planes, 0, y0, y1, x0, x1, w00, w01, w10, w11)
                b = _bilerp(planes, 1, y0, y1, x0, x1, w00, w01, w10, w11)
                if guided:  # a*b* = A * L*/100 + B, with A and B sampled like a*b*
                    a = a * light / 100.0 + _bilerp(planes, 2, y0, y1, x0, x1, w00, w01, w10, w11)
                    b = b * light / 100.0 + _bilerp(planes, 3, y0, y1, x0, x1, w00, w01, w10, w11)
                r, g, bl = _linear(light, a, b, m)
                if not _inside(r, g, bl, tol):
                    lo, hi = 0.0, 1.0
                    for _ in range(steps):
                        mid = 0.5 * (lo + hi)
                        r2, g2, b2 = _linear(light, a * mid, b * mid, m)
                        if _inside(r2, g2, b2, tol):
                            lo = mid
                        else:
                            hi = mid
                    r, g, bl = _linear(light, a * lo, b * lo, m)
                out[y, x, 0] = lut[int(min(max(r, 0.0), 1.0) * top + 0.5)]
                out[y, x, 1] = lut[int(min(max(g, 0.0), 1.0) * top + 0.5)]
                out[y, x, 2] = lut[int(min(max(bl, 0.0), 1.0) * top + 0.5)]


def compose(lum: np.ndarray, planes: np.ndarray, sy: float, sx: float, steps: int = GAMUT_STEPS) -> np.ndarray:
    """8-bit sRGB ``(H, W, 3)`` from L* ``(H, W)`` float32 and chroma planes ``(2|4, h, w)`` float32."""
    import torch

    assert numba is not None, "numba is not installed"
    out = np.empty((*lum.shape, 3), np.uint8)
    planes = np.ascontiguousarray(planes, dtype=np.float32)
    with _LOCK:
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        _compose(np.ascontiguousarray(lum, np.float32), planes, sy, sx, _MATRIX, _linear_to_srgb8_lut(), steps, out)
    return out
