"""Tone augmentation: vary the global tone curve of the network's input, never the colour target.

Archive photos reach the network with tone curves the training photos never had: faded or high-contrast
prints, lifted blacks, scanner gamma. Trained only on clean tones, the network reads such a curve as scene
evidence and answers with a global tint. Here each training image's L* gets a random monotonic curve (gamma,
contrast about mid-grey, an offset) while its a*b* target stays, so the colour has to come from content.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ToneJitter:
    probability: float = 0.5  # share of images whose tone is changed
    gamma: float = 0.4  # log-gamma drawn from [-gamma, gamma]
    contrast: tuple[float, float] = (0.7, 1.2)  # about L* = 50
    offset: float = 0.08  # in L*/100 units, drawn from [-offset, offset]

    def __call__(self, lightness: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(B, 1, H, W)`` L*/100 -> the same with a random tone curve on ``probability`` of the images."""
        if self.probability <= 0:
            return lightness
        b = lightness.shape[0]

        def draw(low: float, high: float) -> Tensor:
            u = torch.rand(b, 1, 1, 1, generator=generator, device="cpu", dtype=torch.float32)
            return (low + (high - low) * u).to(lightness.device)

        apply = draw(0.0, 1.0) < self.probability
        gamma = torch.exp(draw(-self.gamma, self.gamma))
        contrast = draw(*self.contrast)
        offset = draw(-self.offset, self.offset)
        curved = 0.5 + contrast * (lightness.clamp(0.0, 1.0).pow(gamma) - 0.5) + offset
        return torch.where(apply, curved.clamp(0.0, 1.0), lightness)

    def describe(self) -> str:
        return (
            f"tone curves on {self.probability:.0%} of the inputs (gamma e^±{self.gamma:g}, contrast "
            f"{self.contrast[0]:g}-{self.contrast[1]:g}, offset ±{self.offset * 100:g} L*)"
        )
