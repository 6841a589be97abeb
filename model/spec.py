"""Which model runs and how, written once: weights (or an untrained preset) plus the predictor's settings.

Every entry point (the CLI's commands, the bulk job's actors, the API's replicas) describes its model with one
:class:`ModelSpec` and builds its :class:`~model.Colorizer` from it, so no entry point restates the predictor's
fields or their defaults (those live in :class:`~model.config.PredictorConfig` alone). A spec is a frozen
dataclass: it pickles, so a Ray actor receives it and calls it to load the model in its own process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from model.config import ImageLimits, PredictorConfig

if TYPE_CHECKING:
    from model.predictor import Colorizer

_PREDICTOR_FIELDS = frozenset(f.name for f in dataclasses.fields(PredictorConfig))


@dataclass(frozen=True)
class ModelSpec:
    """Weights + preset + predictor settings: enough to rebuild the same predictor in any process."""

    weights: str | None = None  # checkpoint (.safetensors) or exported graph (.onnx); None: the shipped one
    preset: str | None = None  # an untrained network of this preset instead (tests, benchmarks)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)

    def build(self) -> Colorizer:
        """Load the predictor (imported here, so that describing a model never loads torch)."""
        from model.predictor import Colorizer

        return Colorizer.from_pretrained(self.weights, preset=self.preset, config=self.predictor)

    __call__ = build  # a zero-argument factory, as the bulk job's actors expect

    def with_predictor(self, **changes: Any) -> ModelSpec:
        """The same model with some predictor settings changed (validated again by PredictorConfig)."""
        return dataclasses.replace(self, predictor=dataclasses.replace(self.predictor, **changes))

    def to_dict(self) -> dict[str, Any]:
        """Flat, as the Serve config writes it: weights, preset and every PredictorConfig field."""
        return {"weights": self.weights, "preset": self.preset, **dataclasses.asdict(self.predictor)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Build from flat keys; a key left out keeps PredictorConfig's default, an unknown key is an error
        (a typo must not silently fall back to a default)."""
        unknown = set(data) - _PREDICTOR_FIELDS - {"weights", "preset"}
        if unknown:
            raise ValueError(f"unknown model settings: {sorted(unknown)}")
        settings = {k: v for k, v in data.items() if k in _PREDICTOR_FIELDS}
        if isinstance(settings.get("limits"), dict):
            settings["limits"] = ImageLimits(**settings["limits"])
        return cls(weights=data.get("weights"), preset=data.get("preset"), predictor=PredictorConfig(**settings))
