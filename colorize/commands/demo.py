"""``colorize demo``: build a small black-and-white archive from scikit-image's bundled sample photos and
colorize it with ``colorize archive`` (local Ray, CPU by default), then print the summary.

    colorize demo            # ./demo/archive -> ./demo/colorized
    colorize demo --s3       # the same through an S3 API (an embedded moto server; needs moto[server])
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from colorize.commands.archive import add_archive_options, build_config, execute
from colorize.samples import build_sample_archive


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="colorize a small sample archive built from scikit-image's photos (the archive job, end to end)",
        description="Builds DIR/archive from scikit-image's bundled sample photos (greyscale and sepia, nested "
        "folders), then runs `colorize archive DIR/archive DIR/colorized` on local Ray.",
    )
    p.add_argument("--dir", type=Path, default=Path("demo"), help="working folder (default: ./demo)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the sample archive even if it exists")
    p.add_argument("--s3", action="store_true", help="serve the archive through an embedded S3 API (moto)")
    add_archive_options(p)
    p.set_defaults(func=run)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: argparse.Namespace) -> int:
    archive, colorized = args.dir / "archive", args.dir / "colorized"
    if args.rebuild or not archive.is_dir():
        count = build_sample_archive(archive)
        print(f"sample archive: {count} black-and-white photos in {archive}/", file=sys.stderr)
    if not args.s3:
        return execute(build_config(args, str(archive), str(colorized)))
    return _run_s3(args, archive, colorized)


def _run_s3(args: argparse.Namespace, archive: Path, colorized: Path) -> int:
    """The same job through an S3 API: upload to an embedded moto server, colorize bucket to bucket, then
    copy the outputs to DIR/colorized for viewing."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print("error: --s3 needs moto[server] (pip install 'moto[server]')", file=sys.stderr)
        return 2
    from pipelines.archive import StorageOptions, open_store

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the embedded server logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        storage = StorageOptions(
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="demo",
            aws_secret_access_key="demo",
        )
        bucket = open_store("s3://demo", storage)
        bucket.client.create_bucket(Bucket="demo")  # type: ignore[attr-defined]
        source = open_store(archive)
        for obj in source.iter_objects():
            bucket.put(f"archive/{obj.key}", source.get(obj.key))
        print(f"embedded S3 at {storage.endpoint_url}: s3://demo/archive -> s3://demo/colorized", file=sys.stderr)
        config = build_config(args, "s3://demo/archive", "s3://demo/colorized", storage=storage)
        status = execute(config)
        outputs, local = open_store("s3://demo/colorized", storage), open_store(colorized)
        for obj in outputs.iter_objects():
            local.put(obj.key, outputs.get(obj.key))
        print(f"copied the bucket's outputs and report to {colorized}/", file=sys.stderr)
        return status
    finally:
        server.stop()
