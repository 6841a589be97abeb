"""Run the fusion network with ONNX Runtime instead of PyTorch eager mode.

:class:`OnnxFusionNetwork` offers exactly the call interface the predictor uses on a torch network
(``network(x, g) -> (ab_norm, logits | None)``, ``network.global_features(x) -> (vector, logits)``, ``config``,
``global_dim``), backed by an ``onnxruntime.InferenceSession`` and returning torch tensors, so the predictor's
pixel path (decode, batching, padding, chroma upsampling, Lab -> sRGB, encode) is the same for both backends.

The graph (written by :mod:`model.export`) has one required input and one optional one:

* ``lightness`` ``(B, 1, H, W)`` float32, L*/100, H and W multiples of 8 (the predictor pads);
* ``global_vector`` ``(S, G)`` float32, an *overridable initializer* whose default is empty (S = 0): then the
  graph uses each image's own global features; given ``B`` vectors (S = B) it uses those (style transfer).

Outputs: ``ab`` ``(B, 2, H/2, W/2)`` normalised a*b* in [0, 1], ``logits`` ``(B, classes)`` and
``own_global_vector`` ``(B, G)``. The square copy the global path sees is resized inside the graph (an ONNX
``Resize`` with antialiasing, like the torch model's), so a caller needs nothing but the L* plane.

Only ``onnxruntime``, ``numpy`` and ``torch`` are imported here; exporting (``onnx``, ``onnxscript``) and the
cache of graphs exported on the fly live in :mod:`model.export`, which imports this module (never the reverse).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from model.config import FusionConfig, PredictorConfig
from model.device import resolve_device

log = logging.getLogger(__name__)

INPUT = "lightness"
STYLE_INPUT = "global_vector"
OUTPUTS = ("ab", "logits", "own_global_vector")
METADATA_FORMAT = "1"  # the "format" key of the metadata; bumped when inputs, outputs or keys change
DEFAULT_OPSET = 18  # the opset graphs are exported with (part of the cache key of graphs exported on the fly)


def _ort() -> Any:
    try:
        import onnxruntime
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the onnxruntime backend needs the optional extra: pip install 'let-there-be-color[onnx]'"
        ) from None
    return onnxruntime


def session_options(threads: int | None = None) -> Any:
    """All of ONNX Runtime's graph optimisations (Conv+BatchNorm folding, Conv+ReLU fusion, layout
    transforms), ``threads`` intra-op threads (default: torch's setting, so Ray actors and Serve replicas that
    pin torch threads pin these too) and sequential execution (the graph is a chain: nothing to overlap)."""
    ort = _ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the overridable global_vector initializer is intended; no warning
    return options


def providers(device: str = "cpu") -> list[str]:
    """CUDA first when asked for and this onnxruntime build has it; the CPU always as the fallback."""
    available = set(_ort().get_available_providers())
    wanted = ["CUDAExecutionProvider"] if device.startswith("cuda") else []
    return [p for p in wanted if p in available] + ["CPUExecutionProvider"]


class OnnxFusionNetwork:
    """The fusion network as an ONNX Runtime session, with the torch module's call interface."""

    def __init__(self, session: Any, metadata: dict[str, str]) -> None:
        if metadata.get("format") != METADATA_FORMAT:
            raise ValueError(f"not a colorizer ONNX graph (metadata format {metadata.get('format')!r})")
        self.session = session
        self.metadata = metadata
        config = json.loads(metadata["config"])  # a family's config extends FusionConfig (e.g. the prior's)
        known = {f.name for f in dataclasses.fields(FusionConfig)}
        self.config = FusionConfig.from_dict({k: v for k, v in config.items() if k in known})
        self.family = metadata.get("family", "fusion")
        self._global_dim = int(metadata.get("global_dim", self.config.ch(256)))
        self.card: dict[str, Any] = json.loads(metadata.get("card", "{}"))
        self.parameter_count = int(metadata.get("parameters", 0))

    @classmethod
    def load(cls, model: str | Path | bytes, *, threads: int | None = None, device: str = "cpu") -> OnnxFusionNetwork:
        """A session on an ``.onnx`` file (or its bytes) written by :func:`model.export.export_onnx`."""
        ort = _ort()
        source = model if isinstance(model, bytes) else str(model)
        session = ort.InferenceSession(source, session_options(threads), providers=providers(device))
        return cls(session, dict(session.get_modelmeta().custom_metadata_map))

    @property
    def global_dim(self) -> int:
        return self._global_dim

    def _run(self, x: Tensor, g: Tensor | None) -> list[np.ndarray]:
        feeds = {INPUT: x.detach().float().cpu().contiguous().numpy()}
        if g is not None:
            feeds[STYLE_INPUT] = g.detach().float().cpu().contiguous().numpy()
        return list(self.session.run(list(OUTPUTS), feeds))

    def __call__(self, x: Tensor, g: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Normalised a*b* ``(B, 2, H/2, W/2)`` and logits (None when ``g`` is given), as the torch model."""
        ab, logits, _ = self._run(x, g)
        return torch.from_numpy(ab).to(x.device), None if g is not None else torch.from_numpy(logits).to(x.device)

    def global_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Global vector and logits of images of any size. The square copy is made here (the same antialiased
        resize as the torch model's ``global_input``) so the graph's local path runs on the small copy only,
        not on the full image: what a film's per-frame global features would otherwise cost twice."""
        size = self.config.global_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        _, logits, vector = self._run(x, None)
        return torch.from_numpy(vector).to(x.device), torch.from_numpy(logits).to(x.device)

    # The predictor treats its network like an nn.Module in a few places; these keep that working.
    def eval(self) -> OnnxFusionNetwork:
        return self

    def to(self, *args: Any, **kwargs: Any) -> OnnxFusionNetwork:
        return self  # the session's execution provider was chosen at load time

    def parameters(self) -> Iterator[Tensor]:
        """One zero-strided view with as many elements as the exported torch network had parameters, so
        ``count_parameters`` reports the same figure for both backends (the graph's own initializers differ:
        batch norm is folded into the convolutions)."""
        yield torch.zeros(1).expand(self.parameter_count)


def load_onnx(weights: str | Path, config: PredictorConfig | None) -> tuple[OnnxFusionNetwork, PredictorConfig]:
    """An ``.onnx`` file given as weights: its network, and the predictor config switched to this backend."""
    import dataclasses

    config = dataclasses.replace(config or PredictorConfig(), backend="onnxruntime")
    return OnnxFusionNetwork.load(weights, device=str(resolve_device(config.device))), config
