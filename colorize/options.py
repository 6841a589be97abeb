"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from model.config import PredictorConfig


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights", help="checkpoint (.safetensors) or exported graph (.onnx); default: the shipped checkpoint"
    )
    parser.add_argument("--preset", help="untrained network of this preset instead of a checkpoint")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    parser.add_argument(
        "--backend",
        default="torch",
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


def predictor_config(args: argparse.Namespace, **config: Any) -> PredictorConfig:
    """The pixel-path settings from the common model options (see :func:`add_model_options`)."""
    return PredictorConfig(
        device=args.device,
        chroma_gain=getattr(args, "chroma_gain", None),
        backend=getattr(args, "backend", "torch"),
        working_size=getattr(args, "working_size", PredictorConfig.working_size),
        upsample=getattr(args, "upsample", PredictorConfig.upsample),
        **config,
    )


def load_colorizer(args: argparse.Namespace, **config: Any) -> Any:
    """Build the shared predictor from the common options and say clearly when it is untrained."""
    from model import Colorizer

    colorizer = Colorizer.from_pretrained(
        args.weights, preset=getattr(args, "preset", None), config=predictor_config(args, **config)
    )
    if not colorizer.trained:
        print(
            "warning: no trained weights: using a randomly initialised network; colours will be meaningless",
            file=sys.stderr,
        )
    return colorizer
