"""Let there be Color: the fusion colorization network, colour science and the shared predictor."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time the names load lazily (below)
    from model.config import DEFAULT_PRESET, PRESETS, FusionConfig, ImageLimits, PredictorConfig, get_preset
    from model.encoded import EncodedImage, EncodeRequest
    from model.errors import (
        CheckpointError,
        ColorizeError,
        EmptyImageError,
        ImageTooLargeError,
        InvalidImageError,
        NotAnImageError,
        TruncatedImageError,
        UnsupportedImageError,
    )
    from model.imageio import DecodedImage, decode_image, encode_image
    from model.predictor import ChromaPrediction, ColorizedImage, Colorizer
    from model.spec import ModelSpec

# Names re-exported here, by module. Loaded on first use (PEP 562), so that light modules such as
# ``model.config`` can be imported (by the CLI's argument parser, say) without loading torch.
_EXPORTS = {
    "model.config": ("DEFAULT_PRESET", "PRESETS", "FusionConfig", "ImageLimits", "PredictorConfig", "get_preset"),
    "model.errors": (
        "CheckpointError",
        "ColorizeError",
        "EmptyImageError",
        "ImageTooLargeError",
        "InvalidImageError",
        "NotAnImageError",
        "TruncatedImageError",
        "UnsupportedImageError",
    ),
    "model.imageio": ("DecodedImage", "decode_image", "encode_image"),
    "model.encoded": ("EncodeRequest", "EncodedImage"),
    "model.predictor": ("ChromaPrediction", "ColorizedImage", "Colorizer"),
    "model.spec": ("ModelSpec",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "CheckpointError",
    "ChromaPrediction",
    "ColorizeError",
    "ColorizedImage",
    "Colorizer",
    "DecodedImage",
    "EmptyImageError",
    "EncodeRequest",
    "EncodedImage",
    "FusionConfig",
    "ImageLimits",
    "ImageTooLargeError",
    "InvalidImageError",
    "ModelSpec",
    "NotAnImageError",
    "PredictorConfig",
    "TruncatedImageError",
    "UnsupportedImageError",
    "decode_image",
    "encode_image",
    "get_preset",
]
