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
        "--chroma-gain", type=float, help="a*b* multiplier (saturation); default: the checkpoint's calibrated gain"
    )


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
