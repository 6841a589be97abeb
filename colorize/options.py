"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", help="checkpoint (.safetensors); default: the shipped checkpoint")
    parser.add_argument("--preset", help="untrained network of this preset instead of a checkpoint")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    parser.add_argument(
        "--chroma-gain",
        type=chroma_gain,
        help="a*b* multiplier (saturation), 0 to 4; default: the checkpoint's calibrated gain",
    )


def chroma_gain(text: str) -> float:
    """argparse type: PredictorConfig's own check, reported as a usage error instead of a traceback."""
    from model import PredictorConfig

    try:
        return float(PredictorConfig(chroma_gain=float(text)).chroma_gain or 0.0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def load_colorizer(args: argparse.Namespace, **config: Any) -> Any:
    """Build the shared predictor from the common options and say clearly when it is untrained."""
    from model import Colorizer, PredictorConfig

    colorizer = Colorizer.from_pretrained(
        args.weights,
        preset=getattr(args, "preset", None),
        config=PredictorConfig(device=args.device, chroma_gain=getattr(args, "chroma_gain", None), **config),
    )
    if not colorizer.trained:
        print(
            "warning: no trained weights: using a randomly initialised network; colours will be meaningless",
            file=sys.stderr,
        )
    return colorizer
