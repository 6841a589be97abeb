"""``colorize demo``: build a small black-and-white archive from scikit-image's bundled sample photos and
colorize it with ``colorize archive`` (local Ray, CPU by default), then print the summary.

    colorize demo            # ./demo/archive -> ./demo/colorized
    colorize demo --s3       # the same through an S3 API (an embedded moto server; needs moto[server])
"""

from __future__ import annotations

import argparse
import io
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from colorize.commands.archive import add_archive_options, build_config, execute

# (skimage.data function, key in the archive, tone, format). Nested folders, greyscale and sepia, JPEG with
# EXIF (one stored sideways with an orientation tag), PNG, WebP, TIFF and a cameo cut out with transparency.
_LAYOUT = (
    ("astronaut", "portraits/astronaut.jpg", "grey", "JPEG"),
    ("astronaut", "portraits/1960s/astronaut-sepia.jpg", "sepia", "JPEG"),
    ("chelsea", "animals/cats/chelsea.jpg", "sepia", "JPEG"),
    ("chelsea", "animals/cats/chelsea-proof.png", "grey", "PNG"),
    ("coffee", "still-life/coffee.jpg", "grey", "JPEG"),
    ("coffee", "still-life/coffee-sepia.webp", "sepia", "WEBP"),
    ("rocket", "space/rocket.jpg", "grey", "JPEG"),
    ("rocket", "space/launch/rocket-sideways.jpg", "rotated", "JPEG"),
    ("hubble_deep_field", "space/hubble.jpg", "grey", "JPEG"),
    ("moon", "space/moon.png", "grey", "PNG"),
    ("camera", "street/cameraman.tif", "grey", "TIFF"),
    ("coins", "objects/coins.jpg", "sepia", "JPEG"),
    ("immunohistochemistry", "objects/slide.jpg", "grey", "JPEG"),
    ("astronaut", "portraits/cameo.png", "cameo", "PNG"),
)
_CAPTION, _DATE, _ORIENTATION = 0x010E, 0x0132, 0x0112


def sample_photos() -> Iterator[tuple[str, Any]]:
    """(name, PIL image) for each distinct photo in the layout, loaded from scikit-image's own files."""
    import numpy as np
    import skimage.data
    from PIL import Image

    for name in dict.fromkeys(name for name, *_ in _LAYOUT):
        yield name, Image.fromarray(np.asarray(getattr(skimage.data, name)(), dtype=np.uint8))  # L, RGB or RGBA


def tone(image: Any, kind: str) -> Any:
    """The photo as an old print: greyscale, sepia (a brown-toned greyscale) or a cameo with transparency."""
    from PIL import Image, ImageDraw, ImageOps

    grey = image.convert("L")
    if kind == "sepia":
        return ImageOps.colorize(grey, black=(40, 26, 13), white=(255, 240, 205))
    if kind == "cameo":  # an oval cut-out: transparent outside
        alpha = Image.new("L", grey.size, 0)
        ImageDraw.Draw(alpha).ellipse((grey.width * 0.1, 0, grey.width * 0.9, grey.height - 1), fill=255)
        return Image.merge("LA", (grey, alpha))
    return grey


def encode_sample(image: Any, fmt: str, caption: str, sideways: bool = False) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[_CAPTION] = caption
    exif[_DATE] = "1962:02:20 09:47:00"
    if sideways:  # store rotated and let the orientation tag put it upright
        image = image.transpose(Image.Transpose.ROTATE_90)
        exif[_ORIENTATION] = 6
    buffer = io.BytesIO()
    params: dict[str, Any] = {"exif": exif.tobytes()} if fmt in {"JPEG", "WEBP", "PNG", "TIFF"} else {}
    if fmt in {"JPEG", "WEBP"}:
        params["quality"] = 90
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def build_sample_archive(root: Path) -> int:
    """Write the sample archive under ``root``; returns the number of files."""
    photos = dict(sample_photos())
    for name, key, kind, fmt in _LAYOUT:
        image = tone(photos[name], "grey" if kind == "rotated" else kind)
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_sample(image, fmt, f"{name} (scikit-image sample)", sideways=kind == "rotated"))
    return len(_LAYOUT)


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
