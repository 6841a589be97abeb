"""``colorize video IN OUT``: colorize a film, keeping its frames, timing, audio and subtitles."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from colorize.options import add_model_options, load_colorizer


def _on_off(value: str) -> bool:
    lowered = value.lower()
    if lowered in {"on", "yes", "true", "1"}:
        return True
    if lowered in {"off", "no", "false", "0"}:
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {value!r}")


def register(sub: Any) -> None:
    p = sub.add_parser("video", help="colorize a black-and-white film (audio and subtitles kept)")
    p.add_argument("input", type=Path, metavar="IN", help="film to colorize (any format FFmpeg reads)")
    p.add_argument("output", type=Path, metavar="OUT", help="output film; its extension picks the container")
    p.add_argument(
        "--temporal",
        type=_on_off,
        default=True,
        metavar="on|off",
        help="steady colour across frames: shot styles and flow-guided chroma filtering (default: on)",
    )
    p.add_argument("--crf", type=int, default=18, help="encoder constant rate factor (default: 18)")
    p.add_argument("--codec", default="libx264", help="video encoder, or 'auto' for the input's (default: libx264)")
    p.add_argument("--encoder-preset", default="medium", help="x264/x265 speed preset (default: medium)")
    p.add_argument("--batch-size", type=int, default=8, help="frames per network call (default: 8)")
    p.add_argument(
        "--strength", type=float, default=0.85, help="temporal chroma filter strength in [0, 1) (default: 0.85)"
    )
    p.add_argument(
        "--style-window",
        type=float,
        default=2.0,
        help="seconds each side averaged into a frame's style; 0 = the whole shot (default: 2)",
    )
    p.add_argument(
        "--cut-threshold", type=float, default=0.12, help="scene-cut sensitivity, lower = more cuts (default: 0.12)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model import ColorizeError
    from pipelines.video import VideoOptions, colorize_video

    try:
        options = VideoOptions(
            temporal=args.temporal,
            crf=args.crf,
            codec=args.codec,
            encoder_preset=args.encoder_preset,
            batch_size=args.batch_size,
            filter_strength=args.strength,
            style_window=args.style_window or None,
            cut_threshold=args.cut_threshold,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    colorizer = load_colorizer(args, max_batch_size=args.batch_size)
    try:
        summary = colorize_video(
            args.input, args.output, colorizer, options, progress=not args.no_progress and sys.stderr.isatty()
        )
    except (ColorizeError, OSError, ValueError) as exc:
        print(f"FAILED {args.input}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"ok {args.input} -> {args.output}: {summary['frames']} frames, {summary['shots']} shots, "
            f"{summary['duration']:.2f} s, {summary['audio_streams']} audio / {summary['subtitle_streams']} "
            f"subtitle streams kept, {summary['seconds']:.1f} s ({summary['frames_per_second']:.1f} frames/s)"
        )
        for dropped in summary["dropped_streams"]:
            print(f"note: not copied: {dropped}", file=sys.stderr)
    return 0
