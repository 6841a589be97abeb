"""The colorization API over real HTTP on a real Serve instance: formats, bodies, headers, metadata endpoints."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests import imagegen
from tests.services.util import MEDIA, assert_colorized, has_colour

pytestmark = pytest.mark.slow

GREY = imagegen.grey_jpeg(96, 64)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_raw_body_in_each_format(client: Any, fmt: str) -> None:
    r = client.post("/v1/colorize", params={"format": fmt}, content=GREY, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MEDIA[fmt]
    assert_colorized(GREY, r.content, fmt)
    assert has_colour(r.content)
    assert r.headers["x-model"] == "test (untrained)"
    assert r.headers["x-model-trained"] == "false"
    labels = [item.split("=") for item in r.headers["x-scene-labels"].split(", ")]
    assert len(labels) == 3
    probs = [float(p) for _, p in labels]
    assert probs == sorted(probs, reverse=True) and all(0.0 < p <= 1.0 for p in probs)
    assert all(name.startswith("class_") for name, _ in labels)
    assert "model;dur=" in r.headers["server-timing"]
    assert r.headers["content-disposition"].endswith(f'.{"jpg" if fmt == "jpeg" else fmt}"')


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "image/png"])
def test_raw_body_of_any_content_type(client: Any, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.post("/v1/colorize", content=GREY, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"  # no format asked: the input's own
    assert_colorized(GREY, r.content, "jpeg")


def test_multipart_image(client: Any) -> None:
    png = imagegen.palette_png(90, 70)
    r = client.post("/v1/colorize", files={"image": ("photo.png", png, "image/png")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert_colorized(png, r.content, "png")


def test_style_transfer_changes_the_palette(client: Any) -> None:
    image = imagegen.grey_jpeg(128, 96, seed=3)
    style = imagegen.encode(Image.fromarray(imagegen.colour_photo(160, 120, seed=1), "RGB"), "PNG")
    plain = client.post("/v1/colorize?format=png", files={"image": ("a.jpg", image, "image/jpeg")})
    styled = client.post(
        "/v1/colorize?format=png",
        files={"image": ("a.jpg", image, "image/jpeg"), "style": ("ref.png", style, "image/png")},
    )
    assert plain.status_code == styled.status_code == 200, styled.text
    assert_colorized(image, styled.content, "png")
    assert styled.headers["x-scene-labels"] == ""  # labels describe the image's own scene, not a borrowed one
    a = np.asarray(Image.open(io.BytesIO(plain.content)), dtype=np.int16)
    b = np.asarray(Image.open(io.BytesIO(styled.content)), dtype=np.int16)
    assert np.abs(a - b).mean() > 0.5  # the reference's global features changed the colours


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("image/webp", "image/webp"),
        ("image/png;q=0.5, image/webp;q=0.9", "image/webp"),
        ("image/avif, image/png", "image/png"),
        ("text/html, */*;q=0.1", "image/jpeg"),  # */*: the input's own format
    ],
)
def test_accept_header_picks_the_format(client: Any, accept: str, expected: str) -> None:
    r = client.post("/v1/colorize", content=GREY, headers={"Accept": accept})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == expected


def test_format_parameter_wins_over_accept(client: Any) -> None:
    r = client.post("/v1/colorize?format=png", content=GREY, headers={"Accept": "image/webp"})
    assert r.headers["content-type"] == "image/png"


def test_input_without_a_writable_format_answers_png(client: Any) -> None:
    gif = imagegen.encode(Image.fromarray(imagegen.gradient(40, 30), "L"), "GIF")
    r = client.post("/v1/colorize", content=gif)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"


def test_max_side_downscales_first(client: Any) -> None:
    image = imagegen.grey_jpeg(333, 517)
    r = client.post("/v1/colorize", params={"max_side": 100, "format": "png"}, content=image)
    assert r.status_code == 200, r.text
    with Image.open(io.BytesIO(r.content)) as out:
        assert out.size == (64, 100)
    small = client.post("/v1/colorize", params={"max_side": 4000, "format": "png"}, content=image)
    with Image.open(io.BytesIO(small.content)) as out:
        assert out.size == (333, 517)  # never enlarged


def test_alpha_and_orientation_survive(client: Any) -> None:
    rgba = imagegen.rgba_png(120, 80)
    r = client.post("/v1/colorize", content=rgba)
    with Image.open(io.BytesIO(r.content)) as out, Image.open(io.BytesIO(rgba)) as src:
        assert out.mode == "RGBA"
        assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(src.getchannel("A")))
    rotated = imagegen.exif_rotated_jpeg(200, 120, orientation=6)
    r = client.post("/v1/colorize?format=png", content=rotated)
    with Image.open(io.BytesIO(r.content)) as out:
        assert out.size == (120, 200)


def test_model_card(client: Any) -> None:
    r = client.get("/v1/model")
    assert r.status_code == 200
    card = r.json()
    assert card["name"] == "test (untrained)" and card["trained"] is False
    assert card["info"]["preset"] == "test" and card["info"]["device"] == "cpu"
    assert card["formats"] == ["jpeg", "png", "webp"]
    assert card["limits"]["max_body_bytes"] == 3 * 1024 * 1024
    assert card["auth"] is False


def test_health_and_readiness(client: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "model": "test (untrained)"}


def test_openapi_documents_the_endpoints(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/colorize"]["post"]["requestBody"]["content"]
    assert {"image/*", "multipart/form-data"} <= set(body)
    assert {"/v1/model", "/healthz", "/readyz"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_web_page_is_self_contained(client: Any) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert 'type="file"' in page and "v1/colorize" in page and 'name="viewport"' in page
    for attr in ('src="http', "src='http", 'href="http', "url(http", "@import"):
        assert attr not in page  # no CDN, no external fonts: everything is inline


def test_metrics_count_requests_by_status_and_batch_sizes(client: Any) -> None:
    client.post("/v1/colorize", content=imagegen.NOT_AN_IMAGE)
    client.post("/v1/colorize", content=GREY)
    text = client.get("/metrics").text
    assert 'colorize_http_requests_total{method="POST",route="/v1/colorize",status="415"}' in text
    assert 'colorize_http_requests_total{method="POST",route="/v1/colorize",status="200"}' in text
    assert 'colorize_http_request_duration_seconds_bucket{le="0.5",route="/v1/colorize"}' in text
    assert "colorize_batch_size_count" in text
    assert 'colorize_stage_duration_seconds_count{stage="model"}' in text


@pytest.mark.parametrize(
    "make",
    [imagegen.one_pixel_png, imagegen.sixteen_bit_png, imagegen.cmyk_jpeg, imagegen.palette_png, imagegen.sepia_jpeg],
    ids=lambda f: f.__name__,
)
def test_unusual_but_valid_images(client: Any, make: Any) -> None:
    data = make()
    r = client.post("/v1/colorize?format=png", content=data)
    assert r.status_code == 200, r.text
    assert_colorized(data, r.content, "png")


def test_the_api_gives_the_predictors_pixels(client: Any) -> None:
    """The model deployment runs the predictor's own bytes-to-bytes call: the answer is exactly what
    ``colorize_encoded`` (and so the CLI and the bulk job) gives for the same body, EXIF orientation included."""
    from model import Colorizer, EncodeRequest, PredictorConfig

    predictor = Colorizer.from_pretrained(preset="test", config=PredictorConfig(device="cpu"))
    for body in (GREY, imagegen.exif_rotated_jpeg(), imagegen.rgba_png()):
        r = client.post("/v1/colorize", params={"format": "png"}, content=body)
        assert r.status_code == 200, r.text
        (expected,) = predictor.colorize_encoded([EncodeRequest(body, format="png")])
        got = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"), np.int16)
        want = np.asarray(Image.open(io.BytesIO(expected.data)).convert("RGBA"), np.int16)
        assert got.shape == want.shape and np.abs(got - want).max() <= 1
