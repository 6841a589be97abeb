"""``colorize info``: what model would run, and where."""

from __future__ import annotations

import argparse
import json
from typing import Any

from colorize.options import add_model_options, load_colorizer


def register(sub: Any) -> None:
    p = sub.add_parser("info", help="print the model preset, parameter count, weights and device")
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    info = load_colorizer(args).info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"family:     {info['family']}")
    print(f"preset:     {info['preset']}")
    print(f"parameters: {info['parameters']:,}")
    print(f"weights:    {info['weights'] or 'none (randomly initialised)'}")
    print(f"trained:    {info['trained']}")
    print(f"device:     {info['device']} ({info['precision']}, {info['backend']}, codecs: {info['codecs']})")
    print(f"pixel path: working size {info['working_size'] or 'full'}, {info['upsample']} upsampling, "
          f"chroma gain {info['chroma_gain']:g}")
    return 0
