"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from model.config import PredictorConfig
from model.spec import ModelSpec

# The model options' destinations that are PredictorConfig fields of the same name (see add_model_options).
PREDICTOR_OPTIONS = ("device", "backend", "working_size", "upsample", "chroma_gain", "neutral")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the model and how it runs; :func:`model_spec` turns them into a ModelSpec, and
    their defaults are PredictorConfig's own."""
    parser.add_argument(
        "--weights", help="checkpoint (.safetensors) or exported graph (.onnx); default: the shipped checkpoint"
    )
    parser.add_argument("--preset", help="untrained network of this preset instead of a checkpoint")
    parser.add_argument(
        "--device",
        default=PredictorConfig.device,
        help=f"auto | cpu | cuda | cuda:N (default: {PredictorConfig.device})",
    )
    parser.add_argument(
        "--backend",
        default=PredictorConfig.backend,
        choices=["torch", "onnxruntime"],
        help="what runs the network: torch (default) or onnxruntime (pip install '.[onnx]'; the checkpoint is "
        "exported to ONNX on first use, or give an .onnx file from `colorize export` as --weights)",
    )
    parser.add_argument(
        "--working-size",
        type=working_size,
        default=PredictorConfig.working_size,
        metavar="PIXELS|full",
        help=f"longest side the network sees; larger inputs keep their full-resolution L* and get chroma upsampled "
        f"(default: {PredictorConfig.working_size}; 'full' = the input's own size)",
    )
    parser.add_argument(
        "--upsample",
        default=PredictorConfig.upsample,
        choices=["guided", "bilinear"],
        help=f"chroma upsampling to full size (default: {PredictorConfig.upsample}: guided by L* edges)",
    )
    parser.add_argument(
        "--chroma-gain",
        type=chroma_gain,
        help="a*b* multiplier (saturation), 0 to 4; default: the checkpoint's calibrated gain",
    )
    parser.add_argument(
        "--neutral",
        type=neutral_share,
        metavar="SHARE",
        help="remove the tint shared by this share of each picture's least colourful pixels, 0 (off) to 0.5; "
        "default: the checkpoint's value",
    )


def working_size(text: str) -> int | None:
    """argparse type: a size in pixels, or ``full``; checked by PredictorConfig like every other setting."""
    if text.lower() == "full":
        return None
    try:
        return PredictorConfig(working_size=int(text)).working_size
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def chroma_gain(text: str) -> float:
    """argparse type: PredictorConfig's own check, reported as a usage error instead of a traceback."""
    try:
        return float(PredictorConfig(chroma_gain=float(text)).chroma_gain or 0.0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def neutral_share(text: str) -> float:
    """argparse type for ``--neutral``: PredictorConfig's own check, reported as a usage error."""
    try:
        return float(PredictorConfig(neutral=float(text)).neutral or 0.0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def model_spec(args: argparse.Namespace, **overrides: Any) -> ModelSpec:
    """The model the common options choose (see :func:`add_model_options`), with ``overrides`` of other
    PredictorConfig fields (a command's batch size or image limits). Options a command lacks keep
    PredictorConfig's defaults."""
    given = {name: getattr(args, name) for name in PREDICTOR_OPTIONS if hasattr(args, name)}
    return ModelSpec(
        weights=getattr(args, "weights", None),
        preset=getattr(args, "preset", None),
        predictor=PredictorConfig(**{**given, **overrides}),
    )


def load_colorizer(args: argparse.Namespace, **overrides: Any) -> Any:
    """Build the shared predictor from the common options and say clearly when it is untrained."""
    colorizer = model_spec(args, **overrides).build()
    if not colorizer.trained:
        print(
            "warning: no trained weights: using a randomly initialised network; colours will be meaningless",
            file=sys.stderr,
        )
    return colorizer
