"""JPEG decoding and encoding on the GPU (nvJPEG through torchvision), for the predictor's pixel path.

Optional: torchvision comes with the ``gpu`` extra and is imported only when the predictor runs on a CUDA
device (PyPI's torchvision wheels are CUDA builds that cannot load beside a CPU-only torch). Everything else
(other formats, CMYK or ICC-tagged JPEGs, hosts without torchvision) goes through PIL as before, so both paths
give the same pixels: L* from 8-bit sRGB through the same table, EXIF orientation applied, EXIF and an sRGB
profile written into the output.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms

from model.color import _RGB_TO_XYZ, lightness_from_luminance, srgb_to_linear
from model.config import ImageLimits
from model.imageio import DecodedImage, _exif_bytes, probe_image

log = logging.getLogger(__name__)

_GPU_MODES = {"L", "RGB"}  # what nvJPEG decodes to the same pixels as PIL (no CMYK, no ICC conversion)
_SEGMENT_PAYLOAD = 65533  # the most a JPEG APPn segment holds after its 2-byte length


@functools.lru_cache(maxsize=1)
def _torchvision_io() -> Any:
    try:
        import torchvision.io as tvio
    except Exception as exc:  # not installed, or a build that does not match torch
        log.info("GPU JPEG codecs unavailable (%s): decoding and encoding on CPUs", exc)
        return None
    return tvio


def available(device: torch.device) -> bool:
    return device.type == "cuda" and _torchvision_io() is not None


def decodable(device: torch.device, datas: Sequence[bytes], limits: ImageLimits) -> list[int]:
    """Indices of the inputs that nvJPEG decodes here: baseline/progressive greyscale or RGB JPEGs without an
    ICC profile, within ``limits``. Anything else, or anything odd, is left to PIL (which reports errors)."""
    if not available(device):
        return []
    chosen = []
    for i, data in enumerate(datas):
        try:
            header = probe_image(data, limits)
        except Exception:
            continue
        if header.format == "JPEG" and header.mode in _GPU_MODES and not header.icc_profile:
            chosen.append(i)
    return chosen


@functools.lru_cache(maxsize=4)
def _srgb8_to_linear(device: str) -> torch.Tensor:
    return srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255.0).float().to(device)


def lightness_of_srgb8(pixels: torch.Tensor) -> torch.Tensor:
    """L* ``(H, W)`` of 8-bit sRGB ``(C, H, W)`` (C = 1 or 3) on any device: :func:`model.color.srgb8_to_lightness`
    for tensors."""
    linear = _srgb8_to_linear(str(pixels.device))[pixels.long()]
    if linear.shape[0] == 3:
        weights = torch.tensor(_RGB_TO_XYZ[1], dtype=torch.float32, device=pixels.device).view(3, 1, 1)
        y = (linear * weights).sum(dim=0)
    else:
        y = linear[0]
    return lightness_from_luminance(y)


def _metadata(data: bytes) -> DecodedImage:
    """Format, mode and EXIF (orientation reset: nvJPEG applies it) from the header; L* comes separately."""
    with Image.open(io.BytesIO(data)) as image:
        return DecodedImage(
            lightness=np.zeros((0, 0), np.float32), format=image.format, mode=image.mode, exif=_exif_bytes(image)
        )


def decode_jpegs(datas: Sequence[bytes], device: torch.device) -> dict[int, tuple[DecodedImage, torch.Tensor]]:
    """nvJPEG-decode a batch to L* planes on ``device``. Returns the ones that decoded, by index; a batch that
    nvJPEG refuses is left to PIL whole (which then names the bad file)."""
    tvio = _torchvision_io()
    out: dict[int, tuple[DecodedImage, torch.Tensor]] = {}
    metas = [_metadata(d) for d in datas]
    for mode, read_mode in (("L", tvio.ImageReadMode.GRAY), ("RGB", tvio.ImageReadMode.RGB)):
        idx = [i for i, m in enumerate(metas) if m.mode == mode]
        if not idx:
            continue
        tensors = [torch.frombuffer(bytearray(datas[i]), dtype=torch.uint8) for i in idx]
        try:
            decoded = tvio.decode_jpeg(tensors, mode=read_mode, device=device, apply_exif_orientation=True)
        except Exception as exc:
            log.info("nvJPEG refused a batch of %d (%s): decoding it with PIL", len(idx), exc)
            continue
        for i, pixels in zip(idx, decoded, strict=True):
            out[i] = (metas[i], lightness_of_srgb8(pixels))
    return out


def downscale(lightness: Any, max_side: int | None) -> Any:
    """:func:`model.imageio.downscale` for an L* plane already on the device (area averaging)."""
    h, w = lightness.shape[-2:]
    if max_side is None or max(h, w) <= max_side:
        return lightness
    scale = max_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(lightness[None, None], size=size, mode="area")[0, 0]


@functools.lru_cache(maxsize=1)
def _srgb_profile() -> bytes:
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def insert_jpeg_segments(jpeg: bytes, exif: bytes | None, icc: bytes | None) -> bytes:
    """``jpeg`` with an EXIF (APP1) and ICC profile (APP2, chunked) segment after its SOI/APP0 header: what
    PIL writes, for a stream from an encoder that writes no metadata."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream")
    at = 2
    if jpeg[2:4] == b"\xff\xe0":  # keep JFIF first, as readers expect
        at = 4 + int.from_bytes(jpeg[4:6], "big")
    segments = b""
    if exif:
        payload = exif if exif.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + exif
        if len(payload) <= _SEGMENT_PAYLOAD:
            segments += b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    if icc:
        size = _SEGMENT_PAYLOAD - 14
        chunks = [icc[i : i + size] for i in range(0, len(icc), size)]
        for n, chunk in enumerate(chunks, start=1):
            payload = b"ICC_PROFILE\x00" + bytes((n, len(chunks))) + chunk
            segments += b"\xff\xe2" + (len(payload) + 2).to_bytes(2, "big") + payload
    return jpeg[:at] + segments + jpeg[at:]


def jpeg_encoder(device: torch.device) -> Callable[[torch.Tensor, int, bytes | None], bytes] | None:
    """An nvJPEG encoder for ``(H, W, 3)`` uint8 images on ``device``, or None where there is none."""
    if not available(device):
        return None
    tvio = _torchvision_io()

    def encode(rgb: torch.Tensor, quality: int, exif: bytes | None) -> bytes:
        data = tvio.encode_jpeg(rgb.permute(2, 0, 1).contiguous(), quality=quality)
        return insert_jpeg_segments(bytes(data.cpu().numpy().tobytes()), exif, _srgb_profile())

    return encode
