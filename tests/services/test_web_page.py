"""The web page in headless Chromium (Debian's ``chromium``; no browser is ever downloaded): choose a file,
colorize it, see the result, use the before/after slider and the download link; a phone-sized viewport; the
API-key field on a server that needs one."""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests import imagegen
from tests.services.conftest import ServeEndpoints

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "old photo.jpg"
    path.write_bytes(imagegen.grey_jpeg(160, 120))
    return path


def _chroma(rgb: np.ndarray) -> float:
    return float(np.abs(rgb[..., 0] - rgb[..., 1]).mean() + np.abs(rgb[..., 1] - rgb[..., 2]).mean())


def _wait_until(condition: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _colorize(page: Any, photo: Path) -> None:
    page.set_input_files("#file", str(photo))
    page.select_option("#format", "png")
    page.click("#go")


def test_upload_shows_the_colorized_result(serve_app: ServeEndpoints, browser: Any, photo: Path) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    external: list[str] = []
    page.on(
        "request",
        lambda req: None if req.url.startswith(("http://127.0.0.1", "blob:", "data:")) else external.append(req.url),
    )
    page.goto(serve_app.base + "/")
    assert page.is_disabled("#go")
    _colorize(page, photo)
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    # Waits go through locators and element handles: the page's CSP allows no string evaluation
    # (no 'unsafe-eval'), which is what page.wait_for_function would need.
    _wait_until(lambda: page.eval_on_selector("#after", "img => img.naturalWidth") > 0)
    after = page.eval_on_selector("#after", "img => [img.naturalWidth, img.naturalHeight, img.src]")
    assert after[:2] == [160, 120] and after[2].startswith("blob:")
    before = page.eval_on_selector("#before", "img => img.naturalWidth")
    assert before == 160
    # The result fits a phone screen: no horizontal scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The slider moves the split between before and after.
    page.fill("#slider", "20")
    page.dispatch_event("#slider", "input")
    assert page.eval_on_selector("#compare", "el => el.style.getPropertyValue('--pos')") == "20%"
    # Left of the handle the grey original, right of it the colorized result.
    shot = np.asarray(Image.open(io.BytesIO(page.locator("#compare").screenshot())).convert("RGB"), np.int16)
    width = shot.shape[1]
    left, right = shot[:, int(width * 0.05) : int(width * 0.15)], shot[:, int(width * 0.4) : int(width * 0.9)]
    assert _chroma(left) < 2.0 < _chroma(right), (_chroma(left), _chroma(right))
    download = page.get_attribute("#download", "download")
    assert download == "old photo-colorized.png"
    with page.expect_download() as info:
        page.click("#download")
    saved = info.value.path()
    assert Path(saved).read_bytes().startswith(b"\x89PNG")
    assert "class_" in page.inner_text("#labels") and "test (untrained)" in page.inner_text("#labels")
    assert errors == [] and external == []
    page.close()


def test_page_shows_errors_and_uses_the_api_key_field(
    serve_app: ServeEndpoints, browser: Any, photo: Path, tmp_path: Path
) -> None:
    page = browser.new_page()
    page.goto(serve_app.tight + "/")
    _colorize(page, photo)  # no key yet
    expect(page.locator("#status")).to_contain_text("API key", timeout=30_000)
    assert "needs an API key" in page.inner_text("#status")
    page.fill("#api-key", serve_app.api_key)
    page.click("#go")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.eval_on_selector("#after", "img => img.naturalWidth") == 160

    text = tmp_path / "notes.txt"
    text.write_bytes(imagegen.NOT_AN_IMAGE)
    page.set_input_files("#file", str(text))
    page.click("#go")
    expect(page.locator("#status")).to_have_class(re.compile(r"\berror\b"), timeout=30_000)
    assert "not in any supported image format" in page.inner_text("#status")
    page.close()
