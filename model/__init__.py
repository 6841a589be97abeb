"""Let there be Color: the fusion colorization network, colour science and the shared predictor."""

from model.config import DEFAULT_PRESET, PRESETS, FusionConfig, ImageLimits, PredictorConfig, get_preset
from model.errors import (
    CheckpointError,
    ColorizeError,
    EmptyImageError,
    ImageTooLargeError,
    InvalidImageError,
    TruncatedImageError,
    UnsupportedImageError,
)
from model.imageio import DecodedImage, decode_image, encode_image
from model.predictor import ChromaPrediction, ColorizedImage, Colorizer

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
    "FusionConfig",
    "ImageLimits",
    "ImageTooLargeError",
    "InvalidImageError",
    "PredictorConfig",
    "TruncatedImageError",
    "UnsupportedImageError",
    "decode_image",
    "encode_image",
    "get_preset",
]
