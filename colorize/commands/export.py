"""``colorize export --onnx OUT.onnx``: the network as one ONNX graph, for ONNX Runtime without PyTorch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def opset(text: str) -> int:
    """argparse type: the exporter's own lower bound, reported as a usage error."""
    from model.export import MIN_OPSET

    value = int(text)
    if value < MIN_OPSET:
        raise argparse.ArgumentTypeError(f"opset must be >= {MIN_OPSET} (antialiased Resize), got {value}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export the network to ONNX (for ONNX Runtime, without PyTorch)",
        description="Write the network (global path included) as one ONNX graph with dynamic batch, height and "
        "width and the checkpoint's card in its metadata; check it with the onnx checker and compare it with "
        "PyTorch on a random input. Needs the `onnx` extra: pip install '.[onnx]'.",
    )
    p.add_argument("--onnx", required=True, type=Path, metavar="OUT.onnx", help="where to write the graph")
    p.add_argument("--weights", help="checkpoint (.safetensors); default: the shipped checkpoint")
    p.add_argument("--preset", help="an untrained network of this preset instead of a checkpoint")
    p.add_argument("--opset", type=opset, help="ONNX opset (default: 18, the lowest with antialiased Resize)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colorize.options import model_spec
    from model.export import DEFAULT_OPSET, export_onnx, max_ab_difference
    from model.onnx_backend import OnnxFusionNetwork

    try:
        colorizer = model_spec(args).build()
        export_onnx(colorizer.network, args.onnx, card=colorizer.card, opset=args.opset or DEFAULT_OPSET)
    except (ValueError, ModuleNotFoundError) as exc:  # our own errors: colorize.cli, by their exit_code
        print(f"error: {exc}", file=sys.stderr)
        return 2
    graph = OnnxFusionNetwork.load(args.onnx)
    error = max_ab_difference(colorizer.network, graph)
    meta = graph.metadata
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size / 1e6:.1f} MB, opset {args.opset or DEFAULT_OPSET})")
    print(f"model: {meta['name']} (preset {meta['preset']}, chroma gain {meta['chroma_gain']})")
    print(f"inputs: {meta['inputs']}")
    print(f"max |a*b*| difference from PyTorch on a random input: {error:.2g}")
    return 0
