"""The ingress deployment: FastAPI routes, validation, decoding and encoding in front of the model deployment.

``ColorizeIngress`` is a Serve deployment whose FastAPI app is built per replica (``__serve_build_asgi_app__``)
from its :class:`~services.settings.Settings`, so limits and the API key are validated once and closed over.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from ray import serve
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle

from model import ImageLimits
from model.encoded import EncodeRequest
from services import processing
from services.admission import Admission
from services.errors import NotReadyError, OverloadedError, UnauthorizedError, install_error_handlers
from services.metrics import MetricsMiddleware, ServiceMetrics
from services.model_deployment import ColorizeReply
from services.pixel_budget import check_pixel_budget
from services.schemas import (
    COLORIZE_REQUEST_BODY,
    IMAGE_RESPONSES,
    ErrorBody,
    Health,
    Limits,
    ModelCard,
    Readiness,
)
from services.security import install_security
from services.settings import OutputFormat, Settings

_NAME_SAFE = " ()-_.,:;/+=&@"  # a model name may keep these
_LABEL_SAFE = " ()-_./"  # a label may not keep "," or "=", which separate labels and scores


@serve.deployment(name="ColorizeIngress")  # replicas and queues: deploy/serve.yaml
@serve.ingress()
class ColorizeIngress:
    def __init__(self, model: DeploymentHandle, settings: dict[str, Any] | None = None) -> None:
        self.model = model
        self.settings = Settings(**(settings or {}))
        self.limits = ImageLimits(max_bytes=self.settings.max_body_bytes, max_pixels=self.settings.max_pixels)
        self.metrics = ServiceMetrics()
        self.admission = Admission(self.settings, self.metrics.registry)  # latency budget of /v1/colorize
        self._card: dict[str, Any] | None = None
        self._model_name: str | None = None  # set once the model has answered a readiness check

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_api(self)

    async def model_card(self) -> dict[str, Any]:
        if self._card is None:
            self._card = await self._call(self.model.card.remote())
        return self._card

    async def model_ready(self) -> str:
        try:
            name: str = await self.model.ready.remote()
        except BackPressureError:
            if self._model_name is None:
                raise
            return self._model_name
        self._model_name = name
        return name

    def drain(self) -> dict[str, Any]:
        """Graceful stop (``colorize serve`` on SIGTERM): refuse new colorizations, report those in flight."""
        return self.admission.drain()

    async def predict(self, request: EncodeRequest) -> ColorizeReply:
        return await self._call(self.model.predict.remote(request))

    @staticmethod
    async def _call(response: Any) -> Any:
        """Await a model call; a full queue or a missing model is an overload answer (JSON 503), not a bug."""
        try:
            return await response
        except (BackPressureError, DeploymentUnavailableError) as exc:
            raise OverloadedError(str(exc)) from exc


def create_api(ingress: ColorizeIngress) -> FastAPI:
    settings = ingress.settings
    app = FastAPI(
        title="Let there be Color",
        summary="Colorize black-and-white photographs.",
        description="Send a greyscale photo, get it back in colour. Limits and errors: see each endpoint.",
        version="1",
        docs_url=None,  # served by install_security: it says so when Swagger UI's CDN is out of reach
        redoc_url=None,
    )
    install_error_handlers(app, settings.retry_after_s)
    app.add_middleware(MetricsMiddleware, metrics=ingress.metrics)
    page = resources.files("services").joinpath("static/index.html").read_text(encoding="utf-8")
    install_security(app, page)  # CSP, nosniff, frame-ancestors on every answer; /docs
    _operations_routes(app, ingress, page)
    _colorize_routes(app, ingress)
    return app


def _operations_routes(app: FastAPI, ingress: ColorizeIngress, page: str) -> None:
    """The page, liveness, readiness and metrics: open even when the API needs a key."""
    settings = ingress.settings

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        """Liveness: the HTTP layer answers."""
        return Health()

    @app.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": ErrorBody, "description": "the model is not loaded yet"}},
        tags=["operations"],
    )
    async def readyz() -> Any:
        """Readiness: the model deployment is loaded and answering (a full queue still counts as ready: the
        model is loaded, just busy, and the 503s of /v1/colorize already tell clients to back off)."""
        try:
            name = await asyncio.wait_for(ingress.model_ready(), settings.ready_timeout_s)
        except Exception:
            raise NotReadyError(detail="the model is not loaded yet") from None
        return Readiness(model=name)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(ingress.metrics.render(), media_type=ingress.metrics.content_type)


def _colorize_routes(app: FastAPI, ingress: ColorizeIngress) -> None:
    """``/v1``: the model card and colorization, behind the API key when one is configured."""
    settings = ingress.settings
    protected = [Depends(_auth_dependency(settings))] if settings.auth_enabled else []

    @app.get("/v1/model", response_model=ModelCard, dependencies=protected, tags=["colorize"])
    async def model_card() -> ModelCard:
        """The served model's card, its limits and output formats."""
        card = await ingress.model_card()
        return ModelCard(
            **card,
            formats=list(processing.MEDIA_TYPES),
            limits=Limits(
                max_body_bytes=settings.max_body_bytes,
                max_pixels=settings.max_pixels,
                max_side_limit=settings.max_side_limit,
            ),
            auth=settings.auth_enabled,
        )

    @app.post(
        "/v1/colorize",
        dependencies=[*protected, Depends(ingress.admission.ticket)],
        response_class=Response,
        responses=IMAGE_RESPONSES,
        openapi_extra={"requestBody": COLORIZE_REQUEST_BODY},
        tags=["colorize"],
    )
    async def colorize(
        request: Request,
        format: OutputFormat | None = Query(None, description="output format; default: Accept, else the input's"),
        max_side: int | None = Query(
            None, ge=16, le=settings.max_side_limit, description="downscale first so no side exceeds this"
        ),
        quality: int = Query(settings.default_quality, ge=1, le=100, description="JPEG/WebP quality"),
    ) -> Response:
        """Colorize one image: the raw body (any content type), or multipart field `image` with an optional
        `style` reference whose palette is used instead of the image's own."""
        start = time.perf_counter()
        body = await processing.read_body(request, settings.max_body_bytes)
        upload = await processing.parse_upload(request, body)
        check_pixel_budget(settings.pixel_budget, upload.image, upload.style)  # 413 from headers, nothing decoded
        header = processing.check_headers(upload, ingress.limits)  # 400/413/415 before the model sees anything
        fmt = processing.negotiate_format(format, request.headers.get("accept"), header.format, settings.default_format)
        checked_at = time.perf_counter()
        reply = await ingress.predict(
            EncodeRequest(upload.image, format=fmt, quality=quality, max_side=max_side, style=upload.style)
        )
        if reply.error is not None:
            raise reply.error  # a domain error: the error table answers it (4xx)
        assert reply.image is not None
        done = time.perf_counter()
        ingress.metrics.stage.labels("check").observe(checked_at - start)
        ingress.metrics.stage.labels("model").observe(done - checked_at)
        ingress.metrics.batch_size.observe(reply.batch_size)
        headers = _headers(reply, fmt, start, checked_at, done)
        return Response(reply.image.data, media_type=processing.MEDIA_TYPES[fmt], headers=headers)


def _headers(reply: ColorizeReply, fmt: str, start: float, checked_at: float, done: float) -> dict[str, str]:
    return {
        "X-Model": _header_value(reply.model, _NAME_SAFE),
        "X-Model-Trained": "true" if reply.trained else "false",
        "X-Scene-Labels": ", ".join(f"{_header_value(n, _LABEL_SAFE)}={p:.4f}" for n, p in reply.labels),
        "X-Batch-Size": str(reply.batch_size),
        "Server-Timing": (
            f"check;dur={(checked_at - start) * 1e3:.1f}, model;dur={(done - checked_at) * 1e3:.1f}, "
            f"batch;dur={reply.model_seconds * 1e3:.1f}"
        ),
        "Content-Disposition": f'inline; filename="colorized.{processing.EXTENSIONS[fmt]}"',
        "Cache-Control": "no-store",
    }


def _auth_dependency(settings: Settings) -> Any:
    assert settings.api_key is not None
    expected = settings.api_key.get_secret_value().encode()
    bearer = HTTPBearer(auto_error=False, description="the API key configured on the server")

    async def require_api_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise UnauthorizedError("this server needs an API key: send 'Authorization: Bearer <key>'")
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise UnauthorizedError("the API key is not valid")

    return require_api_key


def _header_value(text: str, safe: str) -> str:
    """Header values are ASCII here: percent-encode everything else (a client unquotes to read them)."""
    return quote(text, safe=safe)
