"""``colorize image IN... --out DIR``: colorize files, report each failure, go on with the rest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from colorize.options import add_model_options, load_colorizer


def register(sub: Any) -> None:
    p = sub.add_parser("image", help="colorize image files into a folder")
    p.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="image files")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--style", type=Path, help="reference photo whose global features colour every input")
    p.add_argument("--format", default="same", help="same | jpeg | png | webp | tiff (default: same)")
    p.add_argument("--quality", type=int, default=92, help="JPEG/WebP quality (default: 92)")
    p.add_argument("--max-pixels", type=int, help="reject images with more pixels than this")
    p.add_argument("--max-bytes", type=int, help="reject files larger than this")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model import ColorizeError, ImageLimits
    from model.imageio import file_extension, output_format

    limits = ImageLimits(
        **{k: v for k, v in {"max_pixels": args.max_pixels, "max_bytes": args.max_bytes}.items() if v}
    )
    colorizer = load_colorizer(args, limits=limits)
    style = None
    if args.style is not None:
        try:
            style = colorizer.global_features([args.style])[0]
        except (ColorizeError, OSError) as exc:
            print(f"error: style reference {args.style}: {exc}", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.inputs:
        try:
            result = colorizer.colorize(path, style_vector=style)
            fmt = output_format(args.format, result.source.format)
            data = result.encode(fmt, args.quality)
        except (ColorizeError, OSError) as exc:
            failed += 1
            print(f"FAILED {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        target = args.out / (path.stem + file_extension(fmt))
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)  # never leave a half-written output
        labels = ", ".join(f"{name} {p:.2f}" for name, p in result.labels)
        print(f"ok {path} -> {target}" + (f"  [{labels}]" if labels else ""))
    print(f"{len(args.inputs) - failed} colorized, {failed} failed", file=sys.stderr)
    return 1 if failed else 0
