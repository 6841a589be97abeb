"""Quantised a*b*: the gamut bins of Zhang, Isola & Efros (ECCV 2016), shared by every distribution head.

The ``classification`` family predicts only a distribution over these bins; the fusion network's optional
distribution head (:class:`model.network.DistributionHead`) predicts one beside its regression. Both decode
it with the annealed mean and train it against soft-encoded targets (:mod:`model.training.losses`).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from model.color import rgb_to_lab

AB_EXTENT = 110.0  # the a*b* lattice spans [-110, 110] on both axes, as in Zhang et al.


@functools.lru_cache(maxsize=4)
def _gamut_lattice(grid: float) -> tuple[Tensor, Tensor]:
    """Bin centres ``(Q, 2)`` = the lattice points that 8-bit sRGB colours round to, and the lattice-to-bin
    table ``(n, n)`` (-1 off the gamut). Deterministic, so the bin set needs no storage in the checkpoint.

    Only the RGB cube's surface is converted: varying L* at fixed a*b* leaves the gamut through its surface,
    so the surface covers every a*b* the cube holds."""
    levels = torch.arange(256, dtype=torch.float32) / 255.0
    u, v = (x.flatten() for x in torch.meshgrid(levels, levels, indexing="ij"))
    faces = []
    for axis in range(3):
        for value in (0.0, 1.0):
            channels = [u, v]
            channels.insert(axis, torch.full_like(u, value))
            faces.append(torch.stack(channels))
    ab = rgb_to_lab(torch.cat(faces, dim=1)[:, :, None])[1:, :, 0]  # (2, 6 * 256²)
    n = int(round(2 * AB_EXTENT / grid)) + 1
    cells = ((ab.clamp(-AB_EXTENT, AB_EXTENT) + AB_EXTENT) / grid).round().long()
    occupied = torch.zeros(n, n, dtype=torch.bool)
    occupied[cells[0], cells[1]] = True
    table = torch.full((n, n), -1, dtype=torch.long)
    ia, ib = occupied.nonzero(as_tuple=True)
    table[ia, ib] = torch.arange(ia.numel())
    centres = torch.stack((ia, ib), dim=1).float() * grid - AB_EXTENT
    return centres, table


class ABQuantizer(nn.Module):
    """Maps a*b* values to gamut bins: hard (nearest bin) and soft (Gaussian over the 3x3 lattice
    neighbourhood, which holds the 5 nearest neighbours Zhang et al. use)."""

    centres: Tensor  # (Q, 2) a*b* of each bin
    table: Tensor  # (n, n) lattice point -> bin index, -1 off the gamut

    def __init__(self, grid: float = 10.0, sigma: float = 5.0) -> None:
        super().__init__()
        centres, table = _gamut_lattice(grid)
        self.grid, self.sigma = grid, sigma
        self.register_buffer("centres", centres, persistent=False)
        self.register_buffer("table", table, persistent=False)

    @property
    def num_bins(self) -> int:
        return int(self.centres.shape[0])

    def _lattice(self, ab: Tensor) -> Tensor:
        return (ab.clamp(-AB_EXTENT, AB_EXTENT) + AB_EXTENT) / self.grid  # (B, 2, h, w) lattice coordinates

    def nearest(self, ab: Tensor) -> Tensor:
        """Bin index of each a*b* pixel ``(B, 2, h, w)`` -> ``(B, h, w)``, -1 where the lattice point is no bin."""
        cell = self._lattice(ab).round().long()
        return self.table[cell[:, 0], cell[:, 1]]

    def soft_encode(self, ab: Tensor) -> tuple[Tensor, Tensor]:
        """Bin indices ``(B, 9, h, w)`` and Gaussian weights summing to 1 over the 3x3 lattice neighbourhood of
        each pixel's nearest lattice point (all-zero weights where no neighbour is a bin)."""
        pos = self._lattice(ab)
        base = pos.round().long()
        n = self.table.shape[0]
        offsets = torch.tensor([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], device=ab.device)
        cells = (base[:, :, None] + offsets.T[None, :, :, None, None]).clamp(0, n - 1)  # (B, 2, 9, h, w)
        idx = self.table[cells[:, 0], cells[:, 1]]  # (B, 9, h, w)
        dist2 = ((cells.float() - pos[:, :, None]) * self.grid).pow(2).sum(dim=1)
        weight = torch.exp(-dist2 / (2 * self.sigma**2)) * (idx >= 0)
        weight = weight / weight.sum(dim=1, keepdim=True).clamp(min=1e-12)
        return idx.clamp(min=0), weight

    def annealed_mean(self, logits: Tensor, temperature: float) -> Tensor:
        """Bin logits ``(B, Q, h, w)`` -> a*b* ``(B, 2, h, w)``: the mean of ``softmax(logits / T)``.

        Between the mode (vivid but patchy) and the mean (smooth but washed out), as in Zhang et al."""
        probs = torch.softmax(logits.float() / temperature, dim=1)
        return torch.einsum("bqhw,qc->bchw", probs, self.centres)
