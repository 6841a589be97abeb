"""Settings of the HTTP layer, validated once per ingress replica.

Values come from (highest priority first) the application ``args.settings`` in ``deploy/serve.yaml``, then
environment variables prefixed ``COLORIZE_`` (e.g. ``COLORIZE_API_KEY``, ``COLORIZE_MAX_BODY_BYTES``), then
the defaults below. Scaling (replicas, queues, batching, GPUs) is not here: it lives in ``deploy/serve.yaml``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

OutputFormat = Literal["jpeg", "png", "webp"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLORIZE_", extra="forbid", frozen=True)

    # A bearer token every /v1 request must carry; None (the default) turns authentication off.
    api_key: SecretStr | None = None
    # Request bodies above this many bytes are refused with 413 before they are decoded.
    max_body_bytes: int = Field(32 * 1024 * 1024, gt=0)
    # Images whose header claims more pixels are refused with 413 before any pixel is decoded.
    max_pixels: int = Field(25_000_000, gt=0)
    # Largest `max_side` a client may ask for (and smallest, so a result is never a thumbnail of a thumbnail).
    max_side_limit: int = Field(8192, ge=16)
    # JPEG/WebP quality of answers unless the request says otherwise.
    default_quality: int = Field(90, ge=1, le=100)
    # Format of answers when neither `format` nor `Accept` picks one and the input's format is not writable.
    default_format: OutputFormat = "png"
    # Seconds a client is told to wait (Retry-After) when the model's queue is full.
    retry_after_s: int = Field(1, ge=0)
    # How long /readyz waits for the model deployment before it answers "not ready".
    ready_timeout_s: float = Field(5.0, gt=0)
    # Admission (services/admission.py): a colorization is accepted only if the work already admitted ahead
    # of it (queue depth x measured service time per image) and its own should be done within this many
    # seconds; others get an immediate JSON 503 with Retry-After.
    latency_budget_s: float = Field(2.0, gt=0)
    # Hard bound on colorizations admitted at once per ingress replica (whatever the measured speed), kept
    # below Serve's own bounds in deploy/serve.yaml so that the API, not Serve, always refuses first.
    max_queue_depth: int = Field(32, ge=1)
    # Service time per image assumed until the first colorizations have been measured.
    initial_service_time_s: float = Field(0.1, gt=0)
    # Pixels one request may ask to decode (image + style), checked from the headers before any pixel is
    # decoded: a tiny, highly compressible file of huge dimensions is refused with 413 at once.
    pixel_budget: int = Field(16_777_216, gt=0)

    @property
    def auth_enabled(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value())
