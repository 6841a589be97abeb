"""``colorize SUBCOMMAND ...``. Each module in :mod:`colorize.commands` registers one subcommand through
``register(subparsers)`` and imports its heavy dependencies (torch, Ray, FastAPI) only when it runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

import colorize.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colorize", description="Bring colour to black-and-white photographs and films."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(colorize.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"colorize.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    from model.errors import ColorizeError

    try:
        return int(args.func(args) or 0)
    except ColorizeError as exc:  # the class says which exit status (model/errors.py)
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
