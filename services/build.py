"""``build_app(args) -> Application``: the colorization API as one Serve application.

``deploy/serve.yaml`` names this builder (``import_path: services.build:build_app``) and passes its ``args``;
replicas, autoscaling, queue bounds, batching and GPUs are set there per deployment, never here.
"""

# No `from __future__ import annotations`: Serve reads the builder's annotation to validate `args` into AppArgs.
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application

from services.app import ColorizeIngress
from services.model_deployment import ColorizerModel, ModelArgs
from services.settings import Settings


class AppArgs(BaseModel):
    """``args`` of the application: how to build the predictor and the HTTP layer's settings."""

    model_config = ConfigDict(extra="forbid")

    model: ModelArgs = ModelArgs()
    # Overrides of services.settings.Settings (limits, formats, ...); the rest comes from COLORIZE_* variables.
    settings: dict[str, Any] = Field(default_factory=dict)


def build_app(args: AppArgs) -> Application:
    """Model deployment behind the ingress. ``args`` may also be a plain dict (it is validated either way)."""
    parsed = AppArgs.model_validate(args if args is not None else {})
    Settings(**parsed.settings)  # a bad setting fails the deploy here, not in every replica
    # Only the keys the config sets travel: the replica leaves the rest to PredictorConfig's defaults.
    model = ColorizerModel.bind(parsed.model.model_dump(exclude_unset=True))  # type: ignore[attr-defined]
    return ColorizeIngress.bind(model, parsed.settings)  # type: ignore[attr-defined]
