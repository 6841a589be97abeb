"""The model deployment: the shared predictor, loaded once per replica, behind ``@serve.batch``.

Requests from the ingress arrive one image at a time, as the request's bytes (the ingress has checked sizes,
headers and parameters); Serve groups those that arrive together into one call of :meth:`ColorizerModel.predict`,
which runs the whole pixel path for the batch (:meth:`model.Colorizer.colorize_encoded`: decode, the network at
the working size, recombination with the full-resolution L*, encoding; on a GPU on the device) and returns
encoded bytes. Batch size and wait come from ``user_config`` in ``deploy/serve.yaml``; GPUs from its
``ray_actor_options``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray import serve

from model.config import MAX_CHROMA_GAIN, MAX_NEUTRAL, STRIDE
from model.encoded import EncodedImage, EncodeRequest
from model.errors import ColorizeError
from model.spec import ModelSpec

log = logging.getLogger(__name__)

# Keys whose null is a setting of its own rather than "the default": working_size null = the input's own size.
_NULL_MEANS_SOMETHING = frozenset({"working_size"})


@dataclass
class ColorizeReply:
    """A colorized image (or the domain error that its input raised) and how the batch went."""

    image: EncodedImage | None
    error: ColorizeError | None = None
    batch_size: int = 1
    model_seconds: float = 0.0  # pixel-path time of the whole batch this image ran in
    model: str = ""  # the model's name and whether it is trained, for the answer's headers
    trained: bool = False
    labels: list[tuple[str, float]] = field(default_factory=list)


class ModelArgs(BaseModel):
    """``args.model`` of the application in ``deploy/serve.yaml``: which model each replica serves and how.

    It validates the keys and builds a :class:`model.ModelSpec` from the keys the config sets (:meth:`spec`);
    a key left out (or null, where null has no meaning of its own) keeps PredictorConfig's default, so the
    defaults are written in one place (``model/config.py``). ``torch_threads`` is the replica's own setting."""

    model_config = ConfigDict(extra="forbid")

    weights: str | None = None  # a .safetensors checkpoint (or an exported .onnx graph); default: the shipped one
    preset: str | None = None  # an untrained network of this preset instead
    device: str | None = None  # auto picks the GPU when Ray gave this replica one (num_gpus in serve.yaml)
    precision: str | None = None
    max_batch_pixels: Annotated[int | None, Field(gt=0)] = None
    top_k: Annotated[int | None, Field(ge=0, le=20)] = None
    chroma_gain: Annotated[float | None, Field(ge=0.0, le=MAX_CHROMA_GAIN)] = None  # default: the checkpoint's gain
    neutral: Annotated[float | None, Field(ge=0.0, le=MAX_NEUTRAL)] = None  # default: the checkpoint's value
    torch_threads: Annotated[int | None, Field(ge=1)] = None  # CPU threads per replica; default: torch's choice
    backend: Literal["torch", "onnxruntime"] | None = None  # onnxruntime: the exported graph (the `onnx` extra)
    # the pixel path: longest side the network sees (null = the input's own size) and chroma upsampling
    working_size: Annotated[int | None, Field(ge=STRIDE)] = None
    upsample: Literal["guided", "bilinear"] | None = None

    @model_validator(mode="after")
    def _check_spec(self) -> ModelArgs:
        self.spec()  # PredictorConfig's own checks (device, precision, ...) fail the deploy, not each replica
        return self

    def spec(self) -> ModelSpec:
        """The model these args describe: only the keys the config sets; the rest are PredictorConfig's."""
        given = self.model_dump(exclude_unset=True, exclude={"torch_threads"})
        return ModelSpec.from_dict({k: v for k, v in given.items() if v is not None or k in _NULL_MEANS_SOMETHING})


class BatchConfig(BaseModel):
    """``user_config`` of the model deployment: dynamic batching, changeable without a restart. The values live
    in the Serve config (``deploy/serve.yaml``) alone: both fields are required there."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: Annotated[int, Field(ge=1, le=1024)]
    batch_wait_timeout_s: Annotated[float, Field(ge=0.0, le=10.0)]


@serve.deployment(name="ColorizerModel")  # replicas, queues, GPUs and batching: deploy/serve.yaml
class ColorizerModel:
    def __init__(self, args: dict[str, Any] | None = None) -> None:
        import torch

        self.args = ModelArgs.model_validate(args or {})
        if self.args.torch_threads:
            torch.set_num_threads(self.args.torch_threads)
        self.colorizer = self.args.spec().build()
        if not self.colorizer.trained:
            log.warning("serving an untrained network: colours will be meaningless")
        self.colorizer.warm_up()  # the first client does not wait for kernel compilation
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

    @serve.batch  # size and wait: user_config in deploy/serve.yaml, applied by reconfigure()
    async def predict(self, requests: list[EncodeRequest]) -> list[ColorizeReply]:
        # The pixel path runs in a thread so the replica keeps accepting (and cancelling) requests meanwhile.
        return await asyncio.to_thread(self._predict_batch, requests)

    def _predict_batch(self, requests: list[EncodeRequest]) -> list[ColorizeReply]:
        start = time.perf_counter()
        results = self.colorizer.colorize_encoded(requests)
        elapsed = time.perf_counter() - start
        replies = []
        for result in results:
            reply = ColorizeReply(image=None, batch_size=len(requests), model_seconds=elapsed)
            reply.model, reply.trained = self.colorizer.model_name, self.colorizer.trained
            if isinstance(result, ColorizeError):
                reply.error = result
            else:
                reply.image, reply.labels = result, result.labels
            replies.append(reply)
        return replies
