"""The chroma-shift report: the factor a checkpoint's photos still lack, and whether scene features refitted
into the level would find it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.chroma_shift import Measured, main, missing_factor, shift_rows
from model.checkpoint import save_checkpoint
from model.chroma_level import OFFSET
from model.config import get_preset
from model.network import FusionNetwork
from tests.imagegen import colour_photo


def test_missing_factor_is_the_geometric_mean_of_truth_over_output() -> None:
    truth = np.array([20.0 - OFFSET, 5.0 - OFFSET])
    output = np.array([10.0 - OFFSET, 5.0 - OFFSET])  # one photo at half its truth's chroma, one right
    assert missing_factor(truth, output) == pytest.approx(math.sqrt(2.0))
    assert missing_factor(output, output) == pytest.approx(1.0)


def _photos(n: int, shift: float, rng: np.random.Generator) -> Measured:
    """Photos whose truth is more colourful than the network's output by exp(0.15 v0), v0 the first (and
    widest) coordinate of their global vector; the four level statistics carry no sign of it."""
    vectors = rng.normal(size=(n, 3)) * [2.0, 0.3, 0.3] + [shift, 0.0, 0.0]
    features = rng.normal(size=(n, 4)) * [0.3, 0.3, 0.3, 0.05] + [2.0, 2.4, 2.7, 0.5]
    truth = np.exp(features[:, 0] + 0.15 * vectors[:, 0]) - OFFSET
    sources = ["a"] * (n // 2) + ["b"] * (n - n // 2)
    return Measured(features, vectors, truth, truth / np.exp(0.15 * vectors[:, 0]), sources)


def test_refitting_with_the_components_that_carry_the_shift_removes_it() -> None:
    rng = np.random.default_rng(0)
    fit, vivid = _photos(600, 0.0, rng), _photos(200, 2.0, rng)  # vivid: exp(0.15 * 2) = 1.35 more chroma
    rows = shift_rows({"pack": fit, "vivid": vivid}, fit, [0, 1])
    by = {(r["set"], r["source"]): r for r in rows}
    assert [(r["set"], r["source"], r["photos"]) for r in rows] == [
        ("pack", "a", 300),
        ("pack", "b", 300),
        ("vivid", "a", 100),
        ("vivid", "b", 100),
    ]
    for source in "ab":
        row = by[("vivid", source)]
        assert row["missing"] == pytest.approx(math.exp(0.3), rel=0.1)  # as the outputs stand
        assert row["missing_refit_0"] == pytest.approx(math.exp(0.3), rel=0.1)  # the level's own four: blind
        assert row["missing_refit_1"] == pytest.approx(1.0, abs=0.03)  # the first component carries it
        assert by[("pack", source)]["missing_refit_0"] == pytest.approx(1.0, abs=0.05)  # unbiased where fitted
        assert row["truth_chroma"] > by[("pack", source)]["truth_chroma"]
    assert "missing_refit_0" not in shift_rows({"pack": fit}, None, [])[0]


def test_the_report_runs_on_a_checkpoint_and_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    net = FusionNetwork(get_preset("test").replace(distribution=0.5, chroma_level=True)).eval()
    weights = save_checkpoint(tmp_path / "w.safetensors", net, family="fusion", config=net.config, card={})
    for split, count in (("train", 10), ("val", 4)):
        for i in range(count):
            (tmp_path / "photos" / split / ("people" if i % 2 else "sky")).mkdir(parents=True, exist_ok=True)
            path = tmp_path / "photos" / split / ("people" if i % 2 else "sky") / f"{i}.png"
            Image.fromarray(colour_photo(40, 32, seed=i + 100 * (split == "val"))).save(path)
    argv = [str(weights), "--data", str(tmp_path / "photos"), "--components", "0", "2", "--fit-limit", "10"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "| set | source | photos | truth chroma | output chroma | missing factor | missing, refit K=0 |"
        " missing, refit K=2 |"
    )
    rows = [line.split(" | ") for line in lines[2:4]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("| val", "people", "2"), ("| val", "sky", "2")]  # folder order
    for r in rows:
        truth, output, missing = float(r[3]), float(r[4]), float(r[5])
        assert truth > 5.0 and output >= 0.0  # generated photos are colourful; an untrained network barely is
        assert missing > 1.0
    assert "refits on 10 'train' photos" in lines[-1]
