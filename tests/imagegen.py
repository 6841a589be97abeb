"""Synthetic test inputs made in the tests themselves: photographs-like greyscale, sepia, alpha, palette,
EXIF-rotated and high bit depth images, plus every kind of bad input."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112


def gradient(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth greyscale scene with some structure, ``(H, W)`` uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(x / max(width, 1) * 6.0 + seed) * np.cos(y / max(height, 1) * 4.0)
    base += 0.1 * (y / max(height, 1))
    noise = rng.normal(0, 0.03, size=(height, width))
    return (np.clip(base + noise, 0, 1) * 255).astype(np.uint8)


def colour_photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A colourful synthetic picture ``(H, W, 3)`` uint8: blue sky above, green ground below, a red disc."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    horizon = height // 2
    img[:horizon] = (0.35, 0.55, 0.9)
    img[horizon:] = (0.2, 0.6, 0.2)
    y, x = np.mgrid[0:height, 0:width]
    cx, cy, r = width * (0.3 + 0.4 * rng.random()), height * 0.5, min(width, height) * 0.2
    img[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = (0.85, 0.15, 0.1)
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def grey_jpeg(width: int = 333, height: int = 517, seed: int = 0) -> bytes:
    return encode(Image.fromarray(gradient(width, height, seed), "L"), "JPEG", quality=90)


def sepia_jpeg(width: int = 1024, height: int = 768, seed: int = 1) -> bytes:
    g = gradient(width, height, seed).astype(np.float32) / 255.0
    rgb = np.stack([g * 1.0, g * 0.85, g * 0.65], axis=-1)
    return encode(Image.fromarray((rgb * 255).astype(np.uint8), "RGB"), "JPEG", quality=90)


def rgba_png(width: int = 120, height: int = 80, seed: int = 2) -> bytes:
    g = gradient(width, height, seed)
    alpha = np.full_like(g, 255)
    alpha[:, : width // 3] = 0
    alpha[:, width // 3 : width // 2] = 128
    rgba = np.stack([g, g, g, alpha], axis=-1)
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


def palette_png(width: int = 90, height: int = 70, seed: int = 3) -> bytes:
    image = Image.fromarray(gradient(width, height, seed), "L").convert("P")
    return encode(image, "PNG")


def one_pixel_png(value: int = 128) -> bytes:
    return encode(Image.new("L", (1, 1), value), "PNG")


def exif_rotated_jpeg(width: int = 200, height: int = 120, orientation: int = 6, seed: int = 4) -> bytes:
    """Stored ``width`` x ``height``; displayed rotated (orientation 6: 90° clockwise, so height x width)."""
    image = Image.fromarray(gradient(width, height, seed), "L")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    exif[0x010E] = "A test caption"  # ImageDescription
    exif[0x0132] = "1921:05:04 10:00:00"  # DateTime
    return encode(image, "JPEG", exif=exif.tobytes(), quality=90)


def sixteen_bit_png(width: int = 64, height: int = 48, seed: int = 5) -> bytes:
    g = gradient(width, height, seed).astype(np.uint16) * 257
    return encode(Image.fromarray(g), "PNG")


def cmyk_jpeg(width: int = 64, height: int = 48, seed: int = 6) -> bytes:
    rgb = Image.fromarray(colour_photo(width, height, seed), "RGB")
    return encode(rgb.convert("CMYK"), "JPEG", quality=90)


def float_tiff(width: int = 16, height: int = 16) -> bytes:
    """A floating-point (mode F) image: decodable but not a photograph the colorizer understands."""
    return encode(
        Image.fromarray(np.random.default_rng(0).random((height, width)).astype(np.float32), "F"), "TIFF"
    )


def truncated_jpeg() -> bytes:
    data = grey_jpeg(256, 256)
    return data[: len(data) // 2]


def bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


NOT_AN_IMAGE = b"this is a plain text file, not an image\n"


def matrix_icc_profile(gamma: float = 1.0) -> bytes:
    """A minimal ICC v2 RGB display profile with sRGB primaries and a pure power-law tone curve.

    With ``gamma=1.0`` the stored values are linear light, so a decoder that honours the profile reads the
    same bytes as a clearly different (brighter) picture than one that assumes sRGB.
    """
    import struct

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    table, body = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"\0" * 4
        + b"\0" * 16
        + b"\0" * 28
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body
