"""The model deployment: the shared predictor, loaded once per replica, behind ``@serve.batch``.

Requests from the ingress arrive one image at a time; Serve groups those that arrive together into one call
of :meth:`ColorizerModel.predict`, which runs :meth:`model.Colorizer.predict_chroma` on the whole batch (the
predictor buckets mixed sizes itself). The replica only runs the network: decoding, recombination and encoding
stay on the ingress's CPUs. Batch size and wait come from ``user_config`` in ``deploy/serve.yaml``; GPUs from
its ``ray_actor_options``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from model.config import MAX_CHROMA_GAIN

log = logging.getLogger(__name__)


@dataclass
class ChromaRequest:
    """One image for the network: its L* plane (float16 halves the bytes sent between replicas; the ingress
    keeps the full-precision plane for recombination) and, for style transfer, the reference's L* plane."""

    lightness: np.ndarray  # (H, W) float16 L*
    style: np.ndarray | None = None  # (h, w) float16 L* of the reference image


@dataclass
class ChromaReply:
    ab: np.ndarray  # (2, ceil8(H) / 2, ceil8(W) / 2) float16 a*b*
    labels: list[tuple[str, float]] = field(default_factory=list)
    batch_size: int = 1
    model_seconds: float = 0.0  # network time of the whole batch this image ran in
    model: str = ""  # the model's name and whether it is trained, for the answer's headers
    trained: bool = False


class ModelArgs(BaseModel):
    """How the predictor is built (``args`` of the application in ``deploy/serve.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    weights: str | None = None  # a .safetensors checkpoint; default: the shipped one
    preset: str | None = None  # an untrained network of this preset instead
    device: str = "auto"  # auto picks the GPU when Ray gave this replica one (num_gpus in serve.yaml)
    precision: str = "auto"
    max_batch_pixels: Annotated[int, Field(gt=0)] = 16_000_000
    top_k: Annotated[int, Field(ge=0, le=20)] = 3
    chroma_gain: Annotated[float | None, Field(ge=0.0, le=MAX_CHROMA_GAIN)] = None  # default: the checkpoint's gain
    torch_threads: Annotated[int | None, Field(ge=1)] = None  # CPU threads per replica; default: torch's choice


class BatchConfig(BaseModel):
    """``user_config`` of the model deployment: dynamic batching, changeable without a restart."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: Annotated[int, Field(ge=1, le=1024)] = 8
    batch_wait_timeout_s: Annotated[float, Field(ge=0.0, le=10.0)] = 0.005


@serve.deployment(name="ColorizerModel", max_ongoing_requests=16)
class ColorizerModel:
    def __init__(self, args: dict[str, Any] | None = None) -> None:
        import torch

        from model import Colorizer, PredictorConfig

        self.args = ModelArgs.model_validate(args or {})
        if self.args.torch_threads:
            torch.set_num_threads(self.args.torch_threads)
        config = PredictorConfig(
            device=self.args.device,
            precision=self.args.precision,
            max_batch_pixels=self.args.max_batch_pixels,
            top_k=self.args.top_k,
            chroma_gain=self.args.chroma_gain,
        )
        self.colorizer = Colorizer.from_pretrained(self.args.weights, preset=self.args.preset, config=config)
        if not self.colorizer.trained:
            log.warning("serving an untrained network: colours will be meaningless")
        log.info("model %s loaded on %s", self.colorizer.model_name, self.colorizer.device)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        batch = BatchConfig.model_validate(user_config or {})
        batcher: Any = self.predict  # @serve.batch adds these setters to the method
        batcher.set_max_batch_size(batch.max_batch_size)
        batcher.set_batch_wait_timeout_s(batch.batch_wait_timeout_s)

    def card(self) -> dict[str, Any]:
        import torch

        info = {**self.colorizer.info(), "torch_threads": torch.get_num_threads()}
        return {
            "name": self.colorizer.model_name,
            "trained": self.colorizer.trained,
            "card": self.colorizer.card,
            "info": info,
        }

    def ready(self) -> str:
        return self.colorizer.model_name

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def predict(self, requests: list[ChromaRequest]) -> list[ChromaReply]:
        # The network runs in a thread so the replica keeps accepting (and cancelling) requests meanwhile.
        return await asyncio.to_thread(self._predict_batch, requests)

    def _predict_batch(self, requests: list[ChromaRequest]) -> list[ChromaReply]:
        start = time.perf_counter()
        replies: list[ChromaReply | None] = [None] * len(requests)
        plain = [i for i, r in enumerate(requests) if r.style is None]
        styled = [i for i, r in enumerate(requests) if r.style is not None]
        references = [r.style for r in requests if r.style is not None]
        if plain:
            chroma = self.colorizer.predict_chroma([requests[i].lightness for i in plain])
            for i, c in zip(plain, chroma, strict=True):
                replies[i] = ChromaReply(ab=c.ab, labels=c.labels)
        if styled:
            vectors = self.colorizer.global_features(references)
            chroma = self.colorizer.predict_chroma([requests[i].lightness for i in styled], style=vectors)
            for i, c in zip(styled, chroma, strict=True):
                replies[i] = ChromaReply(ab=c.ab, labels=c.labels)
        elapsed = time.perf_counter() - start
        out = [r for r in replies if r is not None]
        for r in out:
            r.batch_size, r.model_seconds = len(requests), elapsed
            r.model, r.trained = self.colorizer.model_name, self.colorizer.trained
        return out
