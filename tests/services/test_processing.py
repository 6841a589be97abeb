"""The ingress's plain functions and the error table, without Serve."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.exceptions import RequestValidationError
from ray.serve.exceptions import BackPressureError

from model import ImageLimits, decode_image
from model.errors import (
    CheckpointError,
    ColorizeError,
    EmptyImageError,
    ImageTooLargeError,
    InvalidImageError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedImageError,
)
from model.imageio import downscale
from pipelines.archive.storage import StorageError
from pipelines.video.errors import InvalidVideoError
from services import processing
from services.errors import (
    ApiError,
    NotReadyError,
    OverloadedError,
    UnauthorizedError,
    error_response,
    status_for,
)
from tests import imagegen


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (EmptyImageError("x"), 400),
        (TruncatedImageError("x"), 400),
        (InvalidImageError("x"), 400),
        (NotAnImageError("x"), 415),
        (UnsupportedImageError("x"), 415),
        (ImageTooLargeError("x"), 413),
        (RequestValidationError([]), 422),
        (UnauthorizedError("x"), 401),
        (ApiError(406, "x"), 406),
        (OverloadedError("x"), 503),
        (NotReadyError(detail="x"), 503),
        (StorageError("x"), 502),
        (InvalidVideoError("x"), 400),
        (ColorizeError("an unexpected failure, wrapped"), 500),
        (BackPressureError(num_queued_requests=3, max_queued_requests=2), 503),
        (RuntimeError("bug"), 500),
    ],
)
def test_error_table(exc: Exception, status: int) -> None:
    assert status_for(exc) == status
    if isinstance(exc, ColorizeError):  # one hierarchy: the same class also says the CLI's exit status
        assert exc.exit_code == (1 if status >= 500 and not isinstance(exc, StorageError) else 2)


def test_the_cli_exits_with_the_errors_own_status(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from colorize.cli import main

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a checkpoint")
    assert main(["info", "--weights", str(broken)]) == CheckpointError.exit_code == 2
    assert "CheckpointError" in capsys.readouterr().err


def test_error_responses_are_json_with_detail() -> None:
    r = error_response(OverloadedError("queue full"), retry_after_s=3)
    assert r.status_code == 503 and r.headers["retry-after"] == "3"
    assert r.body == b'{"detail":"the colorizer is busy: retry shortly","error":"OverloadedError"}'
    r = error_response(UnauthorizedError("no key"))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    bug = error_response(RuntimeError("secret internals"))
    assert bug.status_code == 500 and b"secret internals" not in bug.body


def test_header_check_tells_text_from_a_damaged_image() -> None:
    """The ingress refuses what the header alone shows (no image, empty, too large); a damaged image passes
    the header check and fails in decoding with its own error, never as "not an image"."""
    limits = ImageLimits(max_pixels=10_000)
    with pytest.raises(NotAnImageError):
        processing.check_headers(processing.Upload(imagegen.NOT_AN_IMAGE), limits)
    with pytest.raises(EmptyImageError):
        processing.check_headers(processing.Upload(b""), limits)
    with pytest.raises(ImageTooLargeError):
        processing.check_headers(processing.Upload(imagegen.grey_jpeg(200, 100)), limits)
    with pytest.raises(NotAnImageError, match="style image"):
        processing.check_headers(processing.Upload(imagegen.grey_jpeg(64, 64), style=b"text"), limits)
    assert processing.check_headers(processing.Upload(imagegen.truncated_jpeg()), ImageLimits()).format == "JPEG"
    damaged = imagegen.grey_jpeg(64, 64)[:30]  # a JPEG header and nothing more
    with pytest.raises(InvalidImageError) as info:
        decode_image(damaged, limits)
    assert not isinstance(info.value, NotAnImageError)


def test_downscale_keeps_aspect_and_never_enlarges() -> None:
    image = decode_image(imagegen.rgba_png(120, 80), ImageLimits())
    small = downscale(image, 60)
    assert small.lightness.shape == (40, 60) and small.alpha is not None and small.alpha.shape == (40, 60)
    assert small.lightness.dtype == np.float32
    assert float(small.lightness.min()) >= 0.0 and float(small.lightness.max()) <= 100.0
    assert downscale(image, 500) is image
    assert downscale(image, None) is image


@pytest.mark.parametrize(
    ("requested", "accept", "source", "expected"),
    [
        ("webp", "image/png", "JPEG", "webp"),
        (None, None, "JPEG", "jpeg"),
        (None, None, "TIFF", "png"),
        (None, "", "PNG", "png"),
        (None, "image/*", "WEBP", "webp"),
        (None, "image/png;q=0.2, image/jpeg;q=0.8", "PNG", "jpeg"),
        (None, "image/webp, image/png", "JPEG", "webp"),
        (None, "image/webp;q=0, image/png", "JPEG", "png"),
        (None, "image/png;q=abc, */*;q=0.1", "JPEG", "jpeg"),
    ],
)
def test_negotiate_format(requested: str | None, accept: str | None, source: str, expected: str) -> None:
    assert processing.negotiate_format(requested, accept, source, "png") == expected


def test_negotiate_format_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ApiError) as info:
        processing.negotiate_format(None, "application/json, text/html", "JPEG", "png")
    assert info.value.status == 406
