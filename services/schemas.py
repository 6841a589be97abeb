"""Typed shapes of what the API answers in JSON (images themselves are answered as bytes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: Any = Field(description="what went wrong: a message, or a list of parameter errors for 422")
    error: str = Field(description="the error's name, e.g. ImageTooLargeError")


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str = "ready"
    model: str


class Limits(BaseModel):
    max_body_bytes: int
    max_pixels: int
    max_side_limit: int


class ModelCard(BaseModel):
    name: str = Field(description="the model's name, also sent as the X-Model header of every image")
    trained: bool = Field(description="False for a randomly initialised network (colours are meaningless)")
    card: dict[str, Any] = Field(description="the checkpoint's model card")
    info: dict[str, Any] = Field(description="architecture, parameters, device and precision")
    formats: list[str] = Field(description="output formats the API writes")
    limits: Limits
    auth: bool = Field(description="whether /v1 requests need a bearer API key")


# What POST /v1/colorize accepts, for the OpenAPI document (the handler reads the body itself so that any
# content type works and the size limit holds while the body streams in).
COLORIZE_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string", "format": "binary", "description": "the photo to colorize"},
                    "style": {
                        "type": "string",
                        "format": "binary",
                        "description": "optional reference photo whose global features set the palette",
                    },
                },
            }
        },
    },
}

IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the colorized image; headers X-Model and X-Scene-Labels name the model and top labels",
        "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
    },
    400: {"model": ErrorBody, "description": "corrupt, truncated or empty image; malformed multipart"},
    401: {"model": ErrorBody, "description": "missing or wrong API key (only when a key is configured)"},
    406: {"model": ErrorBody, "description": "Accept allows no image type the API writes"},
    413: {"model": ErrorBody, "description": "body, pixel count or per-request pixel budget over its limit"},
    415: {"model": ErrorBody, "description": "not an image, or an image mode the model cannot read"},
    422: {"model": ErrorBody, "description": "bad parameters"},
    503: {
        "model": ErrorBody,
        "description": "over the latency budget (OverloadedError) or stopping (ShuttingDownError): retry after "
        "Retry-After seconds",
    },
}
