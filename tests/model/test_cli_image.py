"""``colorize image`` end to end: sizes, luminance, failures reported per file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorize.cli import main
from model import decode_image
from tests import imagegen

GOOD = {
    "grey.jpg": imagegen.grey_jpeg(333, 517),
    "sepia.jpg": imagegen.sepia_jpeg(1024, 768),
    "alpha.png": imagegen.rgba_png(),
    "palette.png": imagegen.palette_png(),
    "dot.png": imagegen.one_pixel_png(),
    "rotated.jpg": imagegen.exif_rotated_jpeg(200, 120),
}
BAD = {
    "empty.jpg": (b"", "EmptyImageError"),
    "notes.png": (imagegen.NOT_AN_IMAGE, "NotAnImageError"),
    "cut.jpg": (imagegen.truncated_jpeg(), "TruncatedImageError"),
    "bomb.png": (imagegen.bomb_png(), "ImageTooLargeError"),
    "float.tif": (imagegen.float_tiff(), "UnsupportedImageError"),
}


def _write(folder: Path, files: dict[str, bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def test_colorize_image_keeps_size_and_lightness(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = _write(tmp_path / "in", GOOD)
    out = tmp_path / "out"
    assert main(["image", *map(str, inputs), "--out", str(out), "--preset", "test"]) == 0
    assert "randomly initialised" in capsys.readouterr().err  # says clearly that it is untrained
    for path in inputs:
        produced = out / path.name
        assert produced.exists(), path.name
        source, result = decode_image(path), decode_image(produced)
        assert result.size == source.size, path.name  # same displayed size
        assert np.abs(result.lightness - source.lightness).mean() < 1.0, path.name
        with Image.open(produced) as image:
            assert image.format == Image.open(path).format  # --format same
    assert Image.open(out / "alpha.png").mode == "RGBA"
    rotated = Image.open(out / "rotated.jpg")
    assert rotated.size == (120, 200) and rotated.getexif()[0x0112] == 1
    assert rotated.getexif()[0x010E] == "A test caption"


def test_bad_files_are_reported_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path / "in", {name: data for name, (data, _) in BAD.items()})
    good = _write(tmp_path / "in", {"grey.jpg": GOOD["grey.jpg"], "dot.png": GOOD["dot.png"]})
    out = tmp_path / "out"
    # Bad files first and in between: the good ones after them must still be written.
    args = [str(bad[0]), str(good[0]), *map(str, bad[1:]), str(good[1])]
    assert main(["image", *args, "--out", str(out), "--preset", "test"]) == 1
    err = capsys.readouterr().err
    for name, (_, error) in BAD.items():
        assert f"FAILED {tmp_path / 'in' / name}: {error}" in err
        assert not (out / name).exists() and not list(out.glob(Path(name).stem + ".*"))
    assert sorted(p.name for p in out.iterdir()) == ["dot.png", "grey.jpg"]
    assert "2 colorized, 5 failed" in err


def test_limits_and_format_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (src,) = _write(tmp_path, {"grey.jpg": GOOD["grey.jpg"]})
    out = tmp_path / "out"
    assert main(["image", str(src), "--out", str(out), "--preset", "test", "--max-pixels", "1000"]) == 1
    assert "ImageTooLargeError" in capsys.readouterr().err
    assert main(["image", str(src), "--out", str(out), "--preset", "test", "--format", "webp"]) == 0
    assert Image.open(out / "grey.webp").format == "WEBP"


def test_style_reference_changes_output(tmp_path: Path) -> None:
    (src,) = _write(tmp_path, {"grey.jpg": GOOD["grey.jpg"]})
    ref = tmp_path / "ref.png"
    Image.fromarray(np.full((64, 64), 240, np.uint8), "L").save(ref)
    main(["image", str(src), "--out", str(tmp_path / "a"), "--preset", "test", "--format", "png"])
    main(
        [
            "image",
            str(src),
            "--out",
            str(tmp_path / "b"),
            "--preset",
            "test",
            "--format",
            "png",
            "--style",
            str(ref),
        ]
    )
    a = np.asarray(Image.open(tmp_path / "a" / "grey.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "b" / "grey.png"), dtype=np.int16)
    assert np.abs(a - b).mean() > 0.5


def test_console_script_info() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "colorize", "info", "--preset", "paper", "--device", "cpu"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "parameters: 42,360,591" in result.stdout
    assert "preset:     paper" in result.stdout
