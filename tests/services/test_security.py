"""Security headers on the page, the API and its errors; /docs works, or says why not, without internet."""

from __future__ import annotations

import re
from importlib import resources

import httpx
import pytest

from services.security import docs_html, inline_hashes, page_csp
from tests import imagegen

PAGE = resources.files("services").joinpath("static/index.html").read_text(encoding="utf-8")


def test_page_policy_allows_exactly_its_own_inline_script_and_style() -> None:
    csp = page_csp(PAGE)
    assert len(inline_hashes(PAGE, "script")) == 1 and len(inline_hashes(PAGE, "style")) == 1
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert not re.search(r"\son[a-z]+=", PAGE)  # inline event handlers would be blocked by this policy
    assert not re.search(r"<[a-z]+[^>]*\sstyle=", PAGE)  # so would style attributes


def test_docs_page_names_its_cdn_and_the_local_fallback() -> None:
    html = docs_html("Let there be Color")
    assert 'href="openapi.json"' in html and "needs internet" in html
    assert "could not be loaded from cdn.jsdelivr.net" in html


@pytest.mark.slow
def test_headers_on_page_api_errors_and_docs(client: httpx.Client) -> None:
    answers = {
        "page": client.get("/"),
        "image": client.post("/v1/colorize", content=imagegen.grey_jpeg(32, 32)),
        "error": client.post("/v1/colorize", content=b"not an image"),
        "health": client.get("/healthz"),
        "docs": client.get("/docs"),
    }
    assert [r.status_code for r in answers.values()] == [200, 200, 415, 200, 200]
    for name, r in answers.items():
        assert r.headers["x-content-type-options"] == "nosniff", name
        assert r.headers["x-frame-options"] == "DENY", name
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], name
    assert answers["page"].headers["content-security-policy"] == page_csp(PAGE)
    assert answers["image"].headers["content-security-policy"].startswith("default-src 'none'")
    docs = answers["docs"]
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert "openapi.json" in docs.text and client.get("/openapi.json").status_code == 200
    assert client.get("/redoc").status_code == 404  # only the docs page that explains itself
