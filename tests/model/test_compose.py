"""The pixel path after the network: chroma upsampling from the working size, recombination with full-resolution
L*, gamut fit; the fused CPU kernel against the batched tensor code (which GPUs run), on the CPU device."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from model import Colorizer, PredictorConfig
from model.color import srgb8_to_lightness
from model.compose import ChromaGrid, compose, compose_batch
from model.encoded import EncodeRequest
from model.gpu_codecs import insert_jpeg_segments, lightness_of_srgb8
from model.imageio import decode_image, encode_image
from tests import imagegen


def _scene(height: int, width: int, grid: ChromaGrid, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth L* plane and a*b* on the chroma grid of ``grid``, with many pixels out of gamut."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    lightness = (50 + 45 * np.sin(x / 13) * np.cos(y / 7)).astype(np.float32)
    hc, wc = (grid.height + (-grid.height % 8)) // 2, (grid.width + (-grid.width % 8)) // 2
    ab = rng.uniform(-90, 90, (2, hc, wc)).astype(np.float32)
    return lightness, ab


def _levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int))


@pytest.mark.parametrize("mode", ["bilinear", "guided"])
@pytest.mark.parametrize(("size", "grid"), [((37, 53), (37, 53)), ((301, 199), (97, 64)), ((64, 64), (8, 8))])
def test_kernel_matches_the_batched_tensor_code(mode: str, size: tuple[int, int], grid: tuple[int, int]) -> None:
    """The CPU kernel and the stacked-batch tensor code (the GPU path) are the same maths: equal within one
    8-bit level except where a bisection step lands on the gamut boundary (a handful of pixels)."""
    g = ChromaGrid(*grid)
    lightness, ab = _scene(*size, g)
    fused = compose(lightness, ab, g, mode)
    (batched,) = compose_batch([torch.from_numpy(lightness)], [torch.from_numpy(ab)], [g], mode)
    assert fused.shape == (*size, 3) and fused.dtype == np.uint8
    diff = _levels(fused, batched.numpy())
    assert (diff > 1).mean() < 1e-3, f"{(diff > 1).sum()} pixels differ by more than one level"


def test_a_batch_of_mixed_sizes_composes_like_single_images() -> None:
    grids = [ChromaGrid(40, 30), ChromaGrid(17, 64), ChromaGrid(8, 8)]
    scenes = [_scene(g.height * 2, g.width * 2, g, seed=i) for i, g in enumerate(grids)]
    together = compose_batch([torch.from_numpy(s[0]) for s in scenes], [torch.from_numpy(s[1]) for s in scenes], grids)
    for (lightness, ab), grid, rgb in zip(scenes, grids, together, strict=True):
        alone = compose_batch([torch.from_numpy(lightness)], [torch.from_numpy(ab)], [grid])[0]
        assert torch.equal(rgb, alone)


@pytest.mark.parametrize("mode", ["bilinear", "guided"])
def test_full_resolution_lightness_is_kept(mode: str) -> None:
    """Chroma predicted on a 4x smaller grid; the output's L* is still the full-resolution input's."""
    lightness, ab = _scene(203, 311, ChromaGrid(51, 78))
    rgb = compose(lightness, ab * 0.4, ChromaGrid(51, 78), mode)
    assert np.abs(srgb8_to_lightness(rgb) - lightness).mean() < 0.3
    assert np.abs(srgb8_to_lightness(rgb) - lightness).max() < 2.0


def test_guided_upsampling_puts_colour_edges_on_luminance_edges() -> None:
    """A sharp L* edge with chroma predicted on a coarse grid: bilinear smears the colour across the edge,
    the guided filter keeps it on its side."""
    lightness = np.full((64, 64), 30.0, np.float32)
    lightness[:, 29:] = 80.0  # an edge between chroma samples
    grid = ChromaGrid(16, 16)
    ab = np.zeros((2, 8, 8), np.float32)
    ab[0, :, :4] = 40.0  # red-ish on the dark side only
    blur = compose(lightness, ab, grid, "bilinear")
    sharp = compose(lightness, ab, grid, "guided")
    bright_side = (slice(None), slice(30, 36))

    def redness(rgb: np.ndarray) -> float:
        return float((rgb[..., 0].astype(int) - rgb[..., 1].astype(int))[bright_side].mean())

    assert redness(sharp) < redness(blur) * 0.5


def test_working_size_bounds_what_the_network_sees() -> None:
    colorizer = Colorizer.from_pretrained(preset="test", config=PredictorConfig(working_size=64))
    (pred,) = colorizer.predict_chroma([np.full((300, 200), 50.0, np.float32)])
    assert (pred.grid.height, pred.grid.width) == (64, 43)
    assert pred.ab.shape == (2, 32, 24)  # half of the padded 64x48 working plane
    full = Colorizer.from_pretrained(preset="test", config=PredictorConfig(working_size=None))
    (pred,) = full.predict_chroma([np.full((300, 200), 50.0, np.float32)])
    assert (pred.grid.height, pred.grid.width) == (300, 200) and pred.ab.shape == (2, 152, 100)
    with pytest.raises(ValueError, match="working_size"):
        PredictorConfig(working_size=4)


def test_a_large_image_keeps_its_size_and_lightness(test_colorizer: Colorizer) -> None:
    data = imagegen.grey_jpeg(1500, 1100)
    result = test_colorizer.colorize(data)
    assert result.rgb.shape == (1100, 1500, 3)
    assert np.abs(srgb8_to_lightness(result.rgb) - result.source.lightness).mean() < 0.5


def test_colorize_encoded_fails_only_the_bad_inputs(test_colorizer: Colorizer) -> None:
    good = imagegen.grey_jpeg(90, 60)
    results = test_colorizer.colorize_encoded(
        [
            EncodeRequest(good),
            EncodeRequest(imagegen.NOT_AN_IMAGE),
            EncodeRequest(imagegen.truncated_jpeg()),
            EncodeRequest(good, format="png", max_side=45),
            EncodeRequest(good, style=imagegen.rgba_png()),
            EncodeRequest(good, style=b"not an image"),
        ]
    )
    kinds = [type(r).__name__ for r in results]
    assert kinds == [
        "EncodedImage",
        "NotAnImageError",
        "TruncatedImageError",
        "EncodedImage",
        "EncodedImage",
        "NotAnImageError",
    ]
    first, _, _, small, styled, _ = results
    assert (first.format, first.width, first.height) == ("JPEG", 90, 60)
    assert (small.format, small.width, small.height) == ("PNG", 45, 30)
    assert Image.open(io.BytesIO(small.data)).size == (45, 30)
    assert styled.labels == []  # another image's global features: no scene labels of its own


def test_colorize_encoded_gives_the_pixels_of_colorize(test_colorizer: Colorizer) -> None:
    """Bytes in, bytes out gives exactly what the in-memory path gives (the CLI's), EXIF and alpha kept."""
    for data, fmt in ((imagegen.exif_rotated_jpeg(), "png"), (imagegen.rgba_png(), "same")):
        (encoded,) = test_colorizer.colorize_encoded([EncodeRequest(data, format=fmt)])
        direct = test_colorizer.colorize(data)
        image = Image.open(io.BytesIO(encoded.data))
        assert np.array_equal(np.asarray(image.convert("RGB")), direct.rgb)
        assert image.size == direct.size
    assert image.mode == "RGBA"  # the PNG with alpha keeps it


def test_lightness_of_srgb8_tensors_matches_the_decoder() -> None:
    rgb = imagegen.colour_photo(40, 30)
    expected = srgb8_to_lightness(rgb)
    got = lightness_of_srgb8(torch.from_numpy(rgb).permute(2, 0, 1))
    assert np.abs(got.numpy() - expected).max() < 1e-3
    grey = rgb[..., 0]
    assert np.abs(lightness_of_srgb8(torch.from_numpy(grey)[None]).numpy() - srgb8_to_lightness(grey)).max() < 1e-3


def test_jpeg_segments_carry_exif_and_the_profile() -> None:
    """What a GPU encoder's bare JPEG gets: PIL reads back the same EXIF and ICC profile as from its own files."""
    source = decode_image(imagegen.exif_rotated_jpeg())
    assert source.exif
    bare = io.BytesIO()
    Image.new("RGB", (16, 8), (120, 60, 30)).save(bare, format="JPEG")
    reference = Image.open(io.BytesIO(encode_image(np.zeros((8, 16, 3), np.uint8), exif=source.exif)))
    icc = reference.info["icc_profile"]
    tagged = Image.open(io.BytesIO(insert_jpeg_segments(bare.getvalue(), source.exif, icc)))
    assert tagged.info["icc_profile"] == icc
    assert dict(tagged.getexif()) == dict(reference.getexif())
    assert tagged.size == (16, 8) and np.asarray(tagged).mean() > 0
    with pytest.raises(ValueError, match="JPEG"):
        insert_jpeg_segments(b"PNG", None, None)


@pytest.mark.gpu
def test_the_gpu_pixel_path_matches_the_cpu() -> None:
    """nvJPEG decode, network, stacked compose and nvJPEG encode on the GPU against the CPU path (PNG out, so
    the encoder adds no difference; JPEG out decodes to nearly the same picture)."""
    requests = [EncodeRequest(imagegen.grey_jpeg(640, 480, seed=s), format="png") for s in range(3)]
    requests.append(EncodeRequest(imagegen.sepia_jpeg(), format="jpeg"))
    cpu = Colorizer.from_pretrained(preset="tiny", config=PredictorConfig(device="cpu"))
    gpu = Colorizer.from_pretrained(preset="tiny", config=PredictorConfig(device="cuda", precision="fp32"))
    for a, b in zip(cpu.colorize_encoded(requests), gpu.colorize_encoded(requests), strict=True):
        x = np.asarray(Image.open(io.BytesIO(a.data)).convert("RGB"), dtype=int)
        y = np.asarray(Image.open(io.BytesIO(b.data)).convert("RGB"), dtype=int)
        limit = 1 if a.format == "PNG" else 6
        assert (np.abs(x - y) > limit).mean() < 1e-3


@pytest.mark.gpu
def test_compose_batch_on_cuda_matches_the_kernel() -> None:
    grid = ChromaGrid(97, 64)
    lightness, ab = _scene(301, 199, grid)
    for mode in ("bilinear", "guided"):
        on_gpu = compose_batch([torch.from_numpy(lightness).cuda()], [torch.from_numpy(ab).cuda()], [grid], mode)
        diff = _levels(on_gpu[0].cpu().numpy(), compose(lightness, ab, grid, mode))
        assert (diff > 1).mean() < 1e-3


def test_warm_up_runs_the_whole_path(test_colorizer: Colorizer) -> None:
    test_colorizer.warm_up()  # compiles or loads the kernel; must not fail on the smallest network
    (result,) = test_colorizer.colorize_encoded([EncodeRequest(imagegen.one_pixel_png())])
    assert (result.width, result.height) == (1, 1)
