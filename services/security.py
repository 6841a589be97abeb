"""Security headers on every answer, and an API docs page that says what it needs when it cannot load.

Why: the web page takes files and an API key from people, so nothing may inject script into it, frame it
(clickjacking) or sniff an image answer into HTML. Every answer carries ``X-Content-Type-Options: nosniff``,
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and a Content-Security-Policy with
``frame-ancestors 'none'``. The page's inline ``<script>`` and ``<style>`` are allowed by their SHA-256 hashes
(computed from the page at start-up), so no other script runs; API answers get ``default-src 'none'``.

``/docs`` is Swagger UI, whose assets come from cdn.jsdelivr.net (FastAPI ships none, nor does any
dependency). On a machine without internet the page used to stay blank; it now says so and points to
``openapi.json``, which is always served locally. Its CSP allows that CDN and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SWAGGER_CDN = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"
_COMMON = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
}
_API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def inline_hashes(html: str, tag: str) -> list[str]:
    """CSP source expressions (``'sha256-...'``) for each inline ``<tag>`` element of ``html``."""
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'" for body in found]


def page_csp(html: str) -> str:
    """The web page's policy: its own inline script and style only, images from blobs it made, calls to the
    API on the same origin."""
    return (
        f"default-src 'none'; script-src {' '.join(inline_hashes(html, 'script'))}; "
        f"style-src {' '.join(inline_hashes(html, 'style'))}; img-src 'self' blob: data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def docs_html(title: str) -> str:
    """Swagger UI from the CDN, with a message that stays if the assets cannot be loaded (no internet)."""
    start = json.dumps({"url": "openapi.json", "dom_id": "#swagger-ui", "deepLinking": True})
    script = (
        f"if (window.SwaggerUIBundle) {{ window.ui = SwaggerUIBundle({start}); }} else {{ "
        'document.getElementById("offline").textContent = "Swagger UI could not be loaded from cdn.jsdelivr.net '
        '(this machine may have no internet access). The API description is served here as openapi.json; '
        'docs/api.md describes every endpoint."; }'
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} - API docs</title>'
        f'<link rel="stylesheet" href="{SWAGGER_CDN}/swagger-ui.css"></head><body>'
        '<div id="swagger-ui"><p id="offline">Loading Swagger UI from cdn.jsdelivr.net: this page needs internet '
        'access for it. Without it, read <a href="openapi.json">openapi.json</a> (served by this API).</p></div>'
        f'<script src="{SWAGGER_CDN}/swagger-ui-bundle.js"></script><script>{script}</script></body></html>'
    )


def docs_csp(html: str) -> str:
    return (
        f"default-src 'none'; script-src https://cdn.jsdelivr.net {' '.join(inline_hashes(html, 'script'))}; "
        "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: https://cdn.jsdelivr.net; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


class SecurityHeadersMiddleware:
    """Pure ASGI middleware adding the headers above to every HTTP answer (errors included); ``policies``
    maps a path suffix (``/``, ``/docs``) to its CSP, everything else gets the API's."""

    def __init__(self, app: ASGIApp, policies: dict[str, str]) -> None:
        self.app = app
        self.policies = {path: csp.encode() for path, csp in policies.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        local = path[len(root) :] if root and path.startswith(root) else path
        csp = self.policies.get(local or "/", _API_CSP.encode())

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in {**_COMMON, b"content-security-policy": csp}.items() if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def install_security(app: FastAPI, page: str) -> None:
    """The security headers middleware, and ``/docs`` served as :func:`docs_html` (FastAPI's own docs routes
    must be off: ``FastAPI(docs_url=None, redoc_url=None)``)."""
    docs = docs_html(app.title)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(docs)

    app.add_middleware(SecurityHeadersMiddleware, policies={"/": page_csp(page), "/docs": docs_csp(docs)})
