"""Image-level chroma: how colourful a whole photo should come out, read from the distribution head.

Regression predicts each pixel's mean colour; where several hues are plausible they cancel and the pixel comes
out greyish. One chroma gain for every photo undoes some of that, but photos differ: a landscape the network is
sure of needs little help, a photo of people or objects whose hues it cannot pin down needs more. The
distribution head (:class:`model.network.DistributionHead`) knows the difference: its expected chroma
magnitude ``E_p[|ab|]`` counts a red-or-blue pixel as colourful, where the mean of red and blue is grey.

:class:`ChromaLevel` scales each photo's decoded a*b* by one factor ``s = exp(bias + coef . f)`` (clamped to
``LIMITS``) of four statistics ``f`` of the network's own outputs (:func:`level_features`): the log mean chroma
of the decoded a*b* (as the predictor outputs it: after the neutral floor, :mod:`model.neutral`), of the
regression alone and of the head's expectation, and the head's mean certainty.
``coef`` and ``bias`` are fitted in closed form (ridge regression, :func:`fit_level`) so that ``log s``
predicts ``log`` of the truth's mean chroma over the prediction's, on training photos; until fitted, ``s`` is 1.
A film shot's frames see nearly the same statistics, so the factor is steady within a shot.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from model.color import denormalize_ab
from model.config import MAX_NEUTRAL
from model.neutral import floor_tint

FEATURES = ("log_floored_chroma", "log_regression_chroma", "log_expected_chroma", "certainty")
LIMITS = (0.5, 3.0)  # the factor never more than halves or triples a photo's chroma
FLOOR_STEP = 2  # the floor tint is estimated on every other a*b* pixel (model/neutral.py)
OFFSET = 0.5  # a*b* units added before each log, so a grey prediction has a finite feature


def mean_chroma(ab: Tensor) -> Tensor:
    """Mean chroma ``(B,)`` of a*b* ``(B, 2, h, w)`` (a*b* units)."""
    return ab.float().norm(dim=1).mean(dim=(1, 2))


def level_features(
    ab: Tensor, regression: Tensor, probs: Tensor, certainty: Tensor, centres: Tensor, share: Tensor | float
) -> Tensor:
    """The statistics ``(B, 4)`` the factor reads (:data:`FEATURES`): ``ab`` the decoded and ``regression``
    the regressed normalised a*b* ``(B, 2, H, W)``; the distribution head's ``probs`` ``(B, Q, h, w)`` over bins
    whose a*b* are ``centres`` ``(Q, 2)`` and its ``certainty`` ``(B, 1, h, w)``
    (:meth:`model.network.DistributionHead.decode`); ``share`` the neutral floor's (the decoded chroma is
    measured as the predictor will output it: with that floor's tint removed)."""
    decoded = denormalize_ab(ab.float())
    floored = decoded - floor_tint(decoded, share, FLOOR_STEP)[:, :, None, None]
    magnitude = centres.float().norm(dim=1).view(1, -1, 1, 1)
    expected = (probs * magnitude).sum(dim=1).mean(dim=(1, 2))  # (B,) E_p[|ab|], averaged over the photo
    return torch.stack(
        (
            torch.log(mean_chroma(floored) + OFFSET),
            torch.log(mean_chroma(denormalize_ab(regression.float())) + OFFSET),
            torch.log(expected + OFFSET),
            certainty.mean(dim=(1, 2, 3)),
        ),
        dim=1,
    )


def level_target(features: np.ndarray, truth_chroma: np.ndarray) -> np.ndarray:
    """What ``log s`` is fitted to: log of each truth's mean chroma over the output's (column 0 of ``features``)."""
    return np.log(np.asarray(truth_chroma, np.float64) + OFFSET) - np.asarray(features, np.float64)[:, 0]


class ChromaLevel(nn.Module):
    """Scale each photo's normalised a*b* about neutral by its fitted factor (1 until :meth:`load_fit`)."""

    coef: Tensor
    bias: Tensor
    share: Tensor  # the neutral floor's share it was fitted with (the decoded chroma is measured after it)

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("coef", torch.zeros(len(FEATURES)))
        self.register_buffer("bias", torch.zeros(()))
        self.register_buffer("share", torch.zeros(()))

    def factor(self, features: Tensor) -> Tensor:
        """``(B, 4)`` statistics -> ``(B,)`` factors within :data:`LIMITS`."""
        log_s = features.float() @ self.coef.float() + self.bias.float()
        return torch.exp(log_s).clamp(*LIMITS)

    def forward(self, ab: Tensor, features: Tensor) -> Tensor:
        s = self.factor(features).view(-1, 1, 1, 1)
        return (0.5 + (ab.float() - 0.5) * s).clamp(0.0, 1.0).to(ab.dtype)

    def load_fit(self, coef: np.ndarray, bias: float) -> None:
        if coef.shape != (len(FEATURES),):
            raise ValueError(f"expected {len(FEATURES)} coefficients, got shape {coef.shape}")
        self.coef.copy_(torch.as_tensor(coef, dtype=torch.float32))
        self.bias.fill_(float(bias))

    def set_share(self, share: float) -> None:
        """Measure the decoded chroma after a neutral floor of ``share`` (before fitting: the predictor's)."""
        if not 0.0 <= share <= MAX_NEUTRAL:
            raise ValueError(f"neutral share must be within [0, {MAX_NEUTRAL:g}], got {share}")
        self.share.fill_(float(share))


def fit_level(features: np.ndarray, truth_chroma: np.ndarray, ridge: float = 10.0) -> tuple[np.ndarray, float]:
    """Ridge regression of ``log((truth + OFFSET) / (prediction + OFFSET))`` on standardised ``features``
    ``(N, 4)`` (column 0 is the prediction's log chroma); returns ``(coef, bias)`` in the features' own units."""
    features = np.asarray(features, np.float64)
    truth_chroma = np.asarray(truth_chroma, np.float64)
    if features.ndim != 2 or features.shape[1] != len(FEATURES) or len(features) != len(truth_chroma):
        raise ValueError(
            f"expected (N, {len(FEATURES)}) features and N truths, got {features.shape}, {truth_chroma.shape}"
        )
    if len(features) < 2 * len(FEATURES):
        raise ValueError(f"need at least {2 * len(FEATURES)} photos to fit the chroma level, got {len(features)}")
    return ridge_fit(features, level_target(features, truth_chroma), ridge)


def ridge_fit(x: np.ndarray, target: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    """Ridge regression of ``target`` ``(N,)`` on the standardised columns of ``x`` ``(N, K)``, the intercept not
    shrunk; returns ``(coef, bias)`` in ``x``'s own units (``x @ coef + bias`` predicts ``target``)."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    design = np.c_[(x - mean) / std, np.ones(len(x))]
    penalty = ridge * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    w = np.linalg.solve(design.T @ design + penalty, design.T @ target)
    coef = w[:-1] / std
    return coef, float(w[-1] - (mean * coef).sum())
