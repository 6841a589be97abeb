"""Export the fusion network to ONNX, for ONNX Runtime on CPUs, edge boxes and other language stacks.

One graph holds the whole network, global path included (the antialiased resize to the square copy is an
ONNX ``Resize``), with dynamic batch, height and width. Style transfer needs no second graph: the global
vector is an optional input (see :mod:`model.onnx_backend` for the interface). The checkpoint's card travels
in the model's metadata, so a runtime without this project still knows the chroma gain and the classes.

Uses the ``torch.export``-based exporter (``dynamo=True``, needs ``onnxscript``): the older TorchScript
exporter has no translation for the antialiased bilinear resize of the global path.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from model.config import FusionConfig
from model.network import FusionNetwork, count_parameters
from model.onnx_backend import DEFAULT_OPSET, INPUT, METADATA_FORMAT, OUTPUTS, STYLE_INPUT, OnnxFusionNetwork

log = logging.getLogger(__name__)

CACHE_ENV = "COLORIZE_ONNX_CACHE"  # where graphs exported on the fly are kept (default ~/.cache/...)
MIN_OPSET = 18  # Resize gained its antialias attribute in opset 18


class _Graph(nn.Module):
    """What is exported: ``(lightness, global_vector) -> (ab, logits, own_global_vector)``.

    ``global_vector`` holds either no rows (use each image's own features) or one row per image (use these):
    concatenating it before the image's own vectors and keeping the first B rows picks the right ones with
    no control flow in the graph, and exactly (a copy, no arithmetic).
    """

    def __init__(self, network: FusionNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, lightness: Tensor, global_vector: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        own, logits = self.network.global_features(lightness)
        chosen = torch.cat((global_vector, own), dim=0)[: lightness.shape[0]]
        ab = self.network.fuse_and_decode(self.network.local_features(lightness), chosen)
        return ab, logits, own


def metadata(config: FusionConfig, card: dict[str, Any], parameters: int, global_dim: int) -> dict[str, str]:
    """The model card as ONNX metadata: flat keys a minimal runtime reads, and the full card as JSON."""
    values = {
        "format": METADATA_FORMAT,
        "family": str(card.get("family") or "fusion"),
        "name": str(card.get("name") or config.name),
        "preset": str(card.get("preset") or config.name),
        "chroma_gain": repr(float(card.get("chroma_gain", 1.0))),
        "neutral": repr(float(card.get("neutral", 0.0))),
        "parameters": str(parameters),
        "global_dim": str(global_dim),
        "config": json.dumps(config.to_dict()),
        "card": json.dumps(card, default=str),
        "inputs": f"{INPUT}: (B, 1, H, W) float32 L*/100, H and W multiples of 8; optional {STYLE_INPUT}: (B, G) "
        "float32 global vectors to colour with instead of each image's own (default: none)",
        "outputs": f"{OUTPUTS[0]}: (B, 2, H/2, W/2) a*b* as (ab / 128 + 1) / 2; {OUTPUTS[1]}: (B, classes); "
        f"{OUTPUTS[2]}: (B, G)",
    }
    if card.get("mean_ab") is not None:
        values["mean_ab"] = json.dumps([float(v) for v in card["mean_ab"]])  # training-set mean a*b*
    return values


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's and its optimiser's notes ("torchvision is not installed", one line per folded
    constant), which a CLI at INFO level would otherwise print by the hundred."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _trace(network: FusionNetwork, opset: int) -> Any:
    """The ONNX model proto of ``network`` with dynamic batch, height, width and number of style vectors."""
    cfg = network.config
    # An example that is not the global square, so the resize to it is traced rather than skipped.
    example = (torch.rand(2, 1, cfg.global_size + 32, cfg.global_size + 64), torch.zeros(0, network.global_dim))
    dim = torch.export.Dim
    shapes = {"lightness": {0: dim("batch"), 2: dim("height"), 3: dim("width")}, "global_vector": {0: dim("styles")}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _Graph(network),
            example,
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT, STYLE_INPUT],
            output_names=list(OUTPUTS),
            dynamic_shapes=shapes,
            optimize=True,
            verbose=False,
        )
    assert program is not None
    return program.model_proto


def export_onnx(
    network: nn.Module,
    path: str | Path | None = None,
    *,
    card: dict[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
) -> Any:
    """Export a fusion network (fp32, eval mode), check it with the ``onnx`` checker, write it to ``path``
    (atomically: Ray actors may export the same graph at once) and return the ``onnx.ModelProto``."""
    import onnx
    from onnx import numpy_helper

    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET} (antialiased Resize), got {opset}")
    if not isinstance(network, FusionNetwork):
        raise ValueError(f"only the fusion network can be exported to ONNX, not {type(network).__name__}")
    work = copy.deepcopy(network).float().cpu().eval()
    with _quiet_exporter():
        model = _trace(work, opset)
    for node in model.graph.node:
        del node.metadata_props[:]  # exporter debug info: stack traces with this machine's paths
    # An initializer named like an input is that input's default (IR >= 4): empty = the image's own vectors.
    empty = np.zeros((0, work.global_dim), np.float32)
    model.graph.initializer.append(numpy_helper.from_array(empty, STYLE_INPUT))
    del model.metadata_props[:]
    for key, value in metadata(work.config, dict(card or {}), count_parameters(network), work.global_dim).items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = "Iizuka et al. 2016 global + local fusion colorization network (let-there-be-color)"
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{id(model)}.tmp")
        onnx.save(model, str(tmp))
        tmp.replace(path)
    return model


def max_ab_difference(network: nn.Module, onnx_network: OnnxFusionNetwork, height: int = 96, width: int = 136) -> float:
    """Largest |a*b*| difference (CIE units) between the torch network and its export on one random input:
    the check ``colorize export`` prints."""
    x = torch.rand(1, 1, height, width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, _ = network.eval()(x)
    got, _ = onnx_network(x)
    return float((got - expected).abs().max()) * 256.0  # normalised [0, 1] spans 256 a*b* units


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "let-there-be-color" / "onnx"


def network_key(network: nn.Module, config: FusionConfig, card: dict[str, Any]) -> str:
    """Content hash of weights, architecture and card: the cache key of an exported graph."""
    digest = hashlib.sha256(f"{METADATA_FORMAT}/{DEFAULT_OPSET}/{torch.__version__}".encode())
    digest.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    digest.update(json.dumps(card, sort_keys=True, default=str).encode())
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def as_onnx_network(network: Any, card: dict[str, Any], device: str = "cpu") -> OnnxFusionNetwork:
    """``network`` for the onnxruntime backend: an exported graph as is; a torch fusion network exported to
    ONNX (once per distinct set of weights: the graph is cached under :func:`cache_dir`, as exporting takes
    seconds and every Ray actor or Serve replica would otherwise repeat it)."""
    if isinstance(network, OnnxFusionNetwork):
        return network
    config = getattr(network, "config", None)
    if not isinstance(config, FusionConfig):
        raise ValueError(f"the onnxruntime backend runs the fusion network only, not {type(network).__name__}")
    path = cache_dir() / f"{network_key(network, config, card)}.onnx"
    if not path.is_file():
        log.info("exporting the network to ONNX: %s", path)
        export_onnx(network, path, card=card)
    return OnnxFusionNetwork.load(path, device=device)
