"""The one predictor every entry point uses: CLI, bulk job, API and video.

``Colorizer`` owns the whole pixel path, for a batch, on its device: checkpoint loading, device and precision,
decoding (:mod:`model.imageio`, or nvJPEG on a GPU), any-resolution batched inference at a bounded working
size (size buckets, padding to the network's stride, a fixed-size global copy), style transfer, luminance-guided
recombination of predicted chroma with the input's own full-resolution L* (:mod:`model.compose`) and encoding
(:mod:`model.encoded`). Its settings are one :class:`~model.config.PredictorConfig`.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from model import gpu_codecs
from model.checkpoint import load_checkpoint
from model.chroma_level import FEATURES as LEVEL_FEATURES
from model.color import denormalize_ab, normalize_lightness
from model.compose import ChromaGrid, compose, compose_batch, resize_area
from model.config import DEFAULT_PRESET, STRIDE, PredictorConfig, get_preset
from model.device import resolve_device
from model.encoded import EncodedImage, EncodeRequest, run_encoded
from model.errors import ColorizeError
from model.families import build_model
from model.imageio import DecodedImage, decode_image, encode_image, lightness_of, output_format
from model.network import count_parameters
from model.neutral import neutral_floor

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "default.safetensors"
ImageInput = DecodedImage | bytes | str | Path | Image.Image


@dataclass
class ChromaPrediction:
    """What the network predicts for one image: a*b* on its chroma grid, and scene labels."""

    ab: np.ndarray  # (2, ceil8(h) / 2, ceil8(w) / 2) float16 a*b* for the (h, w) working-size plane
    grid: ChromaGrid  # the (h, w) the network saw: where these a*b* sit on the full image
    labels: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class ColorizedImage:
    rgb: np.ndarray  # (H, W, 3) uint8 sRGB; its L* is the input's
    source: DecodedImage
    labels: list[tuple[str, float]] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.source.size

    def to_pil(self) -> Image.Image:
        image = Image.fromarray(self.rgb, "RGB")
        if self.source.alpha is not None:
            image.putalpha(Image.fromarray(self.source.alpha, "L"))
        return image

    def encode(self, format: str = "same", quality: int = 92) -> bytes:
        fmt = output_format(format, self.source.format)
        return encode_image(self.rgb, alpha=self.source.alpha, format=fmt, quality=quality, exif=self.source.exif)


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    return torch.bfloat16  # auto and bf16


class Colorizer:
    """Colorize images of any size with a trained (or, before one ships, randomly initialised) network."""

    def __init__(
        self,
        network: nn.Module,
        *,
        family: str = "fusion",
        card: dict[str, Any] | None = None,
        trained: bool = True,
        config: PredictorConfig | None = None,
        weights_path: Path | None = None,
    ) -> None:
        self.config = config or PredictorConfig()
        self.device = resolve_device(self.config.device)
        self.autocast_dtype = _autocast_dtype(self.config.precision, self.device)
        self.family = family
        self.card = dict(card or {})
        self.trained = trained
        self.weights_path = weights_path
        if self.config.backend == "onnxruntime":  # the optional `onnx` extra, imported only when asked for
            from model.export import as_onnx_network

            network = as_onnx_network(network, self.card, str(self.device))  # type: ignore[assignment]
        self.network = network.eval().to(self.device)
        if self.device.type == "cuda":
            self.network = self.network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        net_cfg = getattr(network, "config", None)
        names = tuple(getattr(net_cfg, "class_names", ()) or self.card.get("class_names", ()))
        self.class_names = names
        card_gain = float(self.card.get("chroma_gain", 1.0))
        self.chroma_gain = card_gain if self.config.chroma_gain is None else self.config.chroma_gain
        card_neutral = float(self.card.get("neutral", 0.0))
        self.neutral = card_neutral if self.config.neutral is None else self.config.neutral

    # ----------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        weights: str | Path | None = None,
        *,
        preset: str | None = None,
        config: PredictorConfig | None = None,
    ) -> Colorizer:
        """Load ``weights``; with none, the shipped default checkpoint; with none shipped (or only ``preset``
        given), a randomly initialised network of ``preset`` whose ``trained`` flag is False."""
        if weights is None and preset is None and DEFAULT_WEIGHTS.is_file():
            weights = DEFAULT_WEIGHTS
        if weights is not None and Path(weights).suffix == ".onnx":  # an exported graph: ONNX Runtime
            from model.onnx_backend import load_onnx

            graph, config = load_onnx(weights, config)
            trained = bool(graph.card.get("trained", True))
            return cls(
                graph,  # type: ignore[arg-type]
                family=graph.family,
                card=graph.card,
                trained=trained,
                config=config,
                weights_path=Path(weights),
            )
        if weights is not None:
            ckpt = load_checkpoint(weights)
            return cls(
                ckpt.build(),
                family=ckpt.family,
                card=ckpt.card,
                trained=bool(ckpt.card.get("trained", True)),
                config=config,
                weights_path=Path(weights),
            )
        net_cfg = get_preset(preset or DEFAULT_PRESET)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the same untrained network on every machine
            network = build_model("fusion", net_cfg)
        card = {"name": f"{net_cfg.name} (untrained)", "trained": False}
        return cls(network, family="fusion", card=card, trained=False, config=config)

    def info(self) -> dict[str, Any]:
        net_cfg = getattr(self.network, "config", None)
        return {
            "family": self.family,
            "preset": getattr(net_cfg, "name", None),
            "parameters": count_parameters(self.network),
            "weights": str(self.weights_path) if self.weights_path else None,
            "trained": self.trained,
            "device": str(self.device),
            "precision": str(self.autocast_dtype or torch.float32).replace("torch.", ""),
            "chroma_gain": self.chroma_gain,
            "neutral": self.neutral,
            "backend": self.config.backend,
            "working_size": self.config.working_size,
            "upsample": self.config.upsample,
            "codecs": "nvjpeg" if gpu_codecs.available(self.device) else "pil",
            "config": net_cfg.to_dict() if net_cfg is not None else None,
        }

    @property
    def model_name(self) -> str:
        return str(self.card.get("name") or getattr(getattr(self.network, "config", None), "name", "model"))

    # -------------------------------------------------------------------------------------- decoding
    def decode(self, source: ImageInput) -> DecodedImage:
        if isinstance(source, DecodedImage):
            return source
        if isinstance(source, Image.Image):
            lightness, alpha = lightness_of(source)
            return DecodedImage(lightness=lightness, alpha=alpha, format=None, mode=source.mode)
        return decode_image(source, self.config.limits)

    # ------------------------------------------------------------------------------------- inference
    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        with torch.inference_mode():
            if self.autocast_dtype is not None:
                with torch.autocast(self.device.type, dtype=self.autocast_dtype):
                    yield
            else:
                yield

    def _to_batch(self, planes: Sequence[Tensor]) -> Tensor:
        """Network input ``(B, 1, H8, W8)`` on the device: planes edge-padded to the stride and stacked."""
        h = max(p.shape[0] for p in planes)
        w = max(p.shape[1] for p in planes)
        h, w = h + (-h % STRIDE), w + (-w % STRIDE)
        padded = [
            F.pad(p[None, None], (0, w - p.shape[1], 0, h - p.shape[0]), mode="replicate")
            if p.shape != (h, w)
            else p[None, None]
            for p in planes
        ]
        x = normalize_lightness(torch.cat(padded).to(self.device, torch.float32, non_blocking=True))
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _buckets(self, shapes: Sequence[tuple[int, int]]) -> list[list[int]]:
        """Group indices by padded shape, then split each group by batch size and a pixel budget."""
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, (h, w) in enumerate(shapes):
            groups[(h + (-h % STRIDE), w + (-w % STRIDE))].append(i)
        max_pixels = max(self.config.max_batch_pixels, 1)
        batches: list[list[int]] = []
        for (h, w), idx in groups.items():
            per_batch = max(1, min(self.config.max_batch_size, max_pixels // (h * w)))
            batches.extend(idx[i : i + per_batch] for i in range(0, len(idx), per_batch))
        return batches

    def _labels(self, logits: Tensor | None, n: int) -> list[list[tuple[str, float]]]:
        if logits is None or self.config.top_k == 0:
            return [[] for _ in range(n)]
        probs = logits.float().softmax(dim=1)
        top = probs.topk(min(self.config.top_k, probs.shape[1]), dim=1)
        return [
            [(self._class_name(i), round(v, 4)) for v, i in zip(values, indices, strict=True)]
            for values, indices in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]

    def _class_name(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else f"class_{index}"

    def working_plane(self, lightness: Tensor) -> Tensor:
        """L* ``(H, W)`` at the working size the network sees (area-averaged; unchanged when small enough)."""
        return working_plane(lightness, self.config.working_size)

    def _planes(self, images: Sequence[ImageInput | np.ndarray | Tensor]) -> list[Tensor]:
        return [_as_tensor(x if isinstance(x, (np.ndarray, Tensor)) else self.decode(x).lightness) for x in images]

    def global_features(self, images: Sequence[ImageInput | np.ndarray | Tensor]) -> np.ndarray:
        """Global feature vectors ``(B, G)`` float32 (the style of an image; averaged per shot for video)."""
        global_features = getattr(self.network, "global_features", None)
        if global_features is None:
            raise ValueError(f"the {self.family} model has no global features (no style transfer)")
        return self._per_image(images, lambda x: global_features(x)[0], self.global_dim)

    def level_features(self, images: Sequence[ImageInput | np.ndarray | Tensor]) -> np.ndarray:
        """The statistics ``(B, 4)`` float32 a network's chroma level reads (:mod:`model.chroma_level`), for
        images at the working size, as :meth:`predict_chroma` sees them."""
        level_features = getattr(self.network, "level_features", None)
        if level_features is None:
            raise ValueError(f"the {self.family} model has no chroma level")
        return self._per_image(images, level_features, len(LEVEL_FEATURES))

    def _per_image(
        self, images: Sequence[ImageInput | np.ndarray | Tensor], fn: Callable[[Tensor], Tensor], dim: int
    ) -> np.ndarray:
        """``fn`` of each image at the working size, batched by size: ``(B, dim)`` float32 on the host."""
        planes = [self.working_plane(p) for p in self._planes(images)]
        out = np.zeros((len(planes), dim), np.float32)
        with self._inference():
            for idx in self._buckets([tuple(p.shape) for p in planes]):  # type: ignore[misc]
                out[idx] = fn(self._to_batch([planes[i] for i in idx])).float().cpu().numpy()
        return out

    def _style_tensor(self, style: np.ndarray | None, n: int) -> Tensor | None:
        if style is None:
            return None
        style_t = torch.as_tensor(np.asarray(style, dtype=np.float32))
        if style_t.ndim == 1:
            style_t = style_t.expand(n, -1)
        if style_t.shape[0] != n:
            raise ValueError(f"style has {style_t.shape[0]} vectors for {n} images")
        return style_t

    def predict_on_device(
        self, lightness: Sequence[Tensor], *, style: np.ndarray | None = None
    ) -> list[tuple[Tensor, ChromaGrid, list[tuple[str, float]]]]:
        """a*b* ``(2, h, w)`` float32 tensors on the device (chroma gain applied) with their grids and labels,
        for full-resolution L* planes on any device. The network sees each at the working size."""
        planes = [self.working_plane(p) for p in lightness]
        style_t = self._style_tensor(style, len(planes))
        results: list[Any] = [None] * len(planes)
        with self._inference():
            for idx in self._buckets([tuple(p.shape) for p in planes]):  # type: ignore[misc]
                g = None if style_t is None else style_t[idx].to(self.device)
                ab_norm, logits = self.network(self._to_batch([planes[i] for i in idx]), g)
                ab = neutral_floor(denormalize_ab(ab_norm.float()), self.neutral) * self.chroma_gain
                for j, (i, labels) in enumerate(zip(idx, self._labels(logits, len(idx)), strict=True)):
                    results[i] = (ab[j], ChromaGrid(*planes[i].shape), labels)
        return results

    def predict_chroma(
        self, lightness: Sequence[np.ndarray | Tensor | ImageInput], *, style: np.ndarray | None = None
    ) -> list[ChromaPrediction]:
        """a*b* for each L* plane (any sizes, batched by size), on the host. ``style``: global vector(s) ``(G,)``
        or ``(B, G)`` to use instead of each image's own (style transfer); labels then come back empty."""
        predictions = self.predict_on_device(self._planes(lightness), style=style)
        return [
            ChromaPrediction(ab=ab.to(torch.float16).cpu().numpy(), grid=grid, labels=labels)
            for ab, grid, labels in predictions
        ]

    # --------------------------------------------------------------------------- chroma meets L* again
    def compose(self, lightness: np.ndarray, prediction: ChromaPrediction) -> np.ndarray:
        """8-bit sRGB ``(H, W, 3)``: the full-resolution ``lightness`` with the prediction's chroma (CPU)."""
        return compose(lightness, prediction.ab, prediction.grid, self.config.upsample)

    def colorize_planes(
        self, lightness: Sequence[np.ndarray | Tensor], style: np.ndarray | None = None, keep_on_device: bool = False
    ) -> tuple[list[Any], list[list[tuple[str, float]]]]:
        """The pixel path from full-resolution L* to 8-bit sRGB ``(H, W, 3)`` for a batch, with labels: on a GPU
        all on the device (one stacked conversion; ``keep_on_device`` leaves the results there for a GPU
        encoder), on a CPU through the fused per-image kernel."""
        if self.device.type == "cpu":
            planes = [p.numpy() if isinstance(p, Tensor) else np.asarray(p, np.float32) for p in lightness]
            chroma = self.predict_chroma(planes, style=style)
            return [self.compose(p, c) for p, c in zip(planes, chroma, strict=True)], [c.labels for c in chroma]
        on_device = [_as_tensor(p).to(self.device, non_blocking=True) for p in lightness]
        predictions = self.predict_on_device(on_device, style=style)
        rgb = compose_batch(on_device, [p[0] for p in predictions], [p[1] for p in predictions], self.config.upsample)
        return (rgb if keep_on_device else [x.cpu().numpy() for x in rgb]), [p[2] for p in predictions]

    # ---------------------------------------------------------------------------------- whole images
    def colorize_batch(
        self,
        images: Sequence[ImageInput],
        *,
        style: ImageInput | None = None,
        style_vector: np.ndarray | None = None,
    ) -> list[ColorizedImage]:
        """Decode, colorize and recombine with each input's own L*.

        ``style``: an image whose global features colour every input (style transfer); ``style_vector``:
        precomputed global vector(s) ``(G,)`` or ``(B, G)`` instead (e.g. a film shot's average).
        """
        if style is not None and style_vector is not None:
            raise ValueError("give style or style_vector, not both")
        decoded = [self.decode(x) for x in images]
        if style is not None:
            style_vector = self.global_features([style])[0]
        rgb, labels = self.colorize_planes([d.lightness for d in decoded], style_vector)
        return [ColorizedImage(rgb=r, source=d, labels=lab) for r, d, lab in zip(rgb, decoded, labels, strict=True)]

    def colorize(
        self, image: ImageInput, *, style: ImageInput | None = None, style_vector: np.ndarray | None = None
    ) -> ColorizedImage:
        return self.colorize_batch([image], style=style, style_vector=style_vector)[0]

    def colorize_encoded(self, requests: Sequence[EncodeRequest]) -> list[EncodedImage | ColorizeError]:
        """Bytes in, bytes out, for a batch: what the bulk job's actors and the API's model replicas call.

        Each request is decoded (nvJPEG for JPEGs on a GPU with the ``gpu`` extra, else PIL), reduced to
        ``max_side`` if asked, colorized with the rest of the batch, and encoded in its requested format. A bad
        input comes back as its :class:`ColorizeError` in its slot; the others are unaffected.
        """
        return run_encoded(self, requests)

    def warm_up(self) -> None:
        """Run the whole pixel path once on a small image: compiles (or loads the cached) recombination kernel and
        initialises the device, so that a server's or worker's first real request does not pay for it."""
        run_encoded(self, [EncodeRequest(_WARM_UP_PNG, format="png")])

    @property
    def global_dim(self) -> int:
        return int(getattr(self.network, "global_dim", 0))


def _png(width: int, height: int) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1)), "L").save(buffer, "PNG")
    return buffer.getvalue()


_WARM_UP_PNG = _png(48, 32)


def working_plane(lightness: Tensor, working_size: int | None) -> Tensor:
    """``lightness`` area-averaged so its longest side is at most ``working_size`` (None: unchanged)."""
    h, w = lightness.shape[-2:]
    if working_size is None or max(h, w) <= working_size:
        return lightness
    scale = working_size / max(h, w)
    return resize_area(lightness.float(), (max(1, round(h * scale)), max(1, round(w * scale))))


def _as_tensor(x: np.ndarray | Tensor) -> Tensor:
    if isinstance(x, Tensor):
        plane = x
    else:
        plane = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if plane.ndim != 2:
        raise ValueError(f"expected an (H, W) L* plane, got shape {tuple(plane.shape)}")
    return plane.float()
