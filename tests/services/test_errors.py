"""Every kind of bad request gets its 4xx status and a JSON ``detail``; nothing a client sends is a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests import imagegen
from tests.services.conftest import MAX_BODY_BYTES

pytestmark = pytest.mark.slow

GREY = imagegen.grey_jpeg(64, 48)


def corrupt_jpeg() -> bytes:
    data = bytearray(imagegen.grey_jpeg(128, 128))
    data[200:1200] = bytes(range(256)) * 3 + bytes(232)  # scramble the entropy-coded data mid-stream
    return bytes(data)


def over_pixel_limit() -> bytes:
    # 3000 x 2100 = 6.3 MP against a 6 MP limit; a flat image keeps the body small.
    return imagegen.encode(Image.new("L", (3000, 2100), 90), "JPEG", quality=50)


def assert_error(r: Any, status: int, error: str, detail: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == error
    assert detail in str(body["detail"]), body


@pytest.mark.parametrize(
    ("body", "status", "error", "detail"),
    [
        (b"", 400, "EmptyImageError", "empty input"),
        (imagegen.truncated_jpeg(), 400, "TruncatedImageError", "truncated"),
        (imagegen.NOT_AN_IMAGE, 415, "NotAnImageError", "not in any supported image format"),
        (b'{"image": "https://example.com/photo.jpg"}', 415, "NotAnImageError", "not in any supported"),
        (b"/etc/passwd", 415, "NotAnImageError", "not in any supported"),
        (imagegen.float_tiff(), 415, "UnsupportedImageError", "unsupported pixel mode"),
        (imagegen.bomb_png(), 413, "ImageTooLargeError", "pixels"),
        (over_pixel_limit(), 413, "ImageTooLargeError", "the limit is 6,000,000 pixels"),
        (b"\xff\xd8\xff" + bytes(MAX_BODY_BYTES), 413, "ImageTooLargeError", "the limit is 3,145,728"),
    ],
    ids=["empty", "truncated", "text", "url", "path", "float-mode", "bomb", "pixels", "body-size"],
)
def test_bad_images(client: Any, body: bytes, status: int, error: str, detail: str) -> None:
    assert_error(client.post("/v1/colorize", content=body), status, error, detail)


def test_corrupt_image_is_400(client: Any) -> None:
    r = client.post("/v1/colorize", content=corrupt_jpeg())
    # A scrambled JPEG either fails to decode (400) or decodes to noise (200): never a 5xx or a 415.
    assert r.status_code in {200, 400}, r.text
    if r.status_code == 400:
        assert r.json()["error"] in {"InvalidImageError", "TruncatedImageError"}


def test_chunked_upload_over_the_limit_is_cut_off(client: Any) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count while reading
        yield b"\x89PNG\r\n\x1a\n"
        for _ in range(8):
            yield bytes(512 * 1024)

    assert_error(client.post("/v1/colorize", content=chunks()), 413, "ImageTooLargeError", "exceeds the limit")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("format=gif", "format"),
        ("max_side=0", "max_side"),
        ("max_side=abc", "max_side"),
        ("max_side=100000", "max_side"),
        ("quality=101", "quality"),
    ],
)
def test_bad_parameters_are_422(client: Any, query: str, field: str) -> None:
    r = client.post(f"/v1/colorize?{query}", content=GREY)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"] == ["query", field]


def test_accept_without_an_image_type_is_406(client: Any) -> None:
    r = client.post("/v1/colorize", content=GREY, headers={"Accept": "application/json"})
    assert_error(r, 406, "ApiError", "cannot answer with any type in Accept")


@pytest.mark.parametrize(
    ("files", "status", "detail"),
    [
        ({"photo": ("a.jpg", GREY, "image/jpeg")}, 422, "unknown multipart field(s) ['photo']"),
        ({"style": ("s.jpg", GREY, "image/jpeg")}, 422, "needs a file field 'image'"),
        (
            {"image": ("a.jpg", GREY, "image/jpeg"), "style": ("s.txt", b"hello", "text/plain")},
            415,
            "the style image is not in any supported image format",
        ),
        (
            [("image", ("a.jpg", GREY, "image/jpeg")), ("image", ("b.jpg", GREY, "image/jpeg"))],
            422,
            "given 2 times",
        ),
    ],
    ids=["unknown-field", "no-image", "style-not-image", "two-images"],
)
def test_bad_multipart(client: Any, files: Any, status: int, detail: str) -> None:
    r = client.post("/v1/colorize", files=files)
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]


def test_multipart_text_field_instead_of_a_file_is_422(client: Any) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="image"\r\n\r\nnot a file\r\n--b--\r\n'
    r = client.post("/v1/colorize", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 422, r.text
    assert "must be a file upload" in r.json()["detail"]


def test_malformed_multipart_is_400(client: Any) -> None:
    r = client.post("/v1/colorize", content=GREY, headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 400, r.text
    assert "malformed multipart body" in r.json()["detail"]


def test_wrong_method_and_path_answer_json(client: Any) -> None:
    r = client.get("/v1/colorize")
    assert r.status_code == 405 and r.json()["detail"] == "Method Not Allowed"
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["detail"] == "Not Found"


def test_random_bytes_never_cause_a_server_error(client: Any) -> None:
    rng = np.random.default_rng(7)
    valid = [imagegen.grey_jpeg(64, 64), imagegen.rgba_png(), imagegen.sixteen_bit_png()]
    valid.append(imagegen.encode(Image.fromarray(imagegen.gradient(64, 64), "L"), "WEBP"))
    bodies = [rng.bytes(int(n)) for n in rng.integers(1, 4096, size=8)]
    for data in valid:  # every prefix length class of each format: header-only, mid-data, nearly whole
        for cut in (4, 16, 40, len(data) // 3, len(data) - 7):
            bodies.append(data[:cut])
        flipped = bytearray(data)
        for i in rng.integers(20, len(data), size=40):
            flipped[int(i)] ^= 0xFF
        bodies.append(bytes(flipped))
    for body in bodies:
        r = client.post("/v1/colorize", content=body)
        assert r.status_code < 500 and r.status_code in {200, 400, 413, 415}, (r.status_code, body[:16])
        if r.status_code != 200:
            assert r.json()["detail"]
