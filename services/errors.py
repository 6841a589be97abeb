"""The one table that turns errors into HTTP answers. Every error answer is JSON: ``{"detail": ..., "error": ...}``.

Domain errors come from :mod:`model.errors`; this module adds the few that only exist at the HTTP boundary
(authentication, overload, content that is no image at all). Nothing a client sends can reach the final
``Exception`` row: that row exists so a server bug still answers JSON, never a bare stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from starlette.requests import ClientDisconnect

from model.errors import (
    EmptyImageError,
    ImageTooLargeError,
    InvalidImageError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedImageError,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An HTTP-level refusal raised by the API layer itself (bad parameters, bad multipart, bad Accept)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


class UnauthorizedError(Exception):
    """The request lacks the configured bearer token, or carries a wrong one."""


class OverloadedError(Exception):
    """The model's queue is full, admission refused the request, or the server is stopping: the client should
    retry after a short wait. ``detail`` and ``retry_after_s`` override the generic message and the
    configured Retry-After (admission knows how long its queue needs to drain)."""

    def __init__(self, message: str = "", *, detail: str | None = None, retry_after_s: int | None = None) -> None:
        super().__init__(message or detail or "overloaded")
        self.detail = detail
        self.retry_after_s = retry_after_s


# (error class, HTTP status): the first row whose class matches (isinstance, so subclasses follow their
# parents unless listed earlier) decides. Order matters: most specific first.
ERROR_TABLE: tuple[tuple[type[Exception], int], ...] = (
    (NotAnImageError, 415),
    (EmptyImageError, 400),
    (TruncatedImageError, 400),
    (InvalidImageError, 400),
    (UnsupportedImageError, 415),
    (ImageTooLargeError, 413),
    (RequestValidationError, 422),
    (UnauthorizedError, 401),
    (ApiError, 400),  # carries its own status
    (ClientDisconnect, 400),  # nobody reads it; it keeps a vanished client from looking like a server error
    (OverloadedError, 503),
    # Serve registers its own plain-text handlers for these two on the ingress app, so the ingress turns
    # them into OverloadedError where it calls the model; the rows keep status_for() complete.
    (BackPressureError, 503),
    (DeploymentUnavailableError, 503),
    (Exception, 500),
)


def status_for(exc: BaseException) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    for cls, status in ERROR_TABLE:
        if isinstance(exc, cls):
            return status
    return 500


def _detail(exc: BaseException, status: int) -> Any:
    if isinstance(exc, RequestValidationError):
        return jsonable_encoder(exc.errors())
    if isinstance(exc, ApiError):
        return exc.detail
    if isinstance(exc, UnauthorizedError):
        return str(exc) or "missing or invalid API key"
    if isinstance(exc, OverloadedError) and exc.detail:
        return exc.detail
    if isinstance(exc, (OverloadedError, BackPressureError, DeploymentUnavailableError)):
        return "the colorizer is busy: retry shortly"
    if isinstance(exc, ClientDisconnect):
        return "client disconnected"
    if status >= 500:
        return "internal server error"
    return str(exc) or type(exc).__name__


def _headers(exc: BaseException, status: int, retry_after_s: int) -> dict[str, str]:
    headers = dict(exc.headers) if isinstance(exc, ApiError) else {}
    if status == 503:
        own = exc.retry_after_s if isinstance(exc, OverloadedError) else None
        headers["Retry-After"] = str(retry_after_s if own is None else own)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return headers


def error_response(exc: BaseException, retry_after_s: int = 1) -> JSONResponse:
    """The JSON answer for ``exc``: status from :data:`ERROR_TABLE`, a ``detail`` and the error's name."""
    status = status_for(exc)
    if status >= 500 and status != 503:
        log.error("unexpected error answering a request", exc_info=exc)
    body = {"detail": _detail(exc, status), "error": type(exc).__name__}
    return JSONResponse(body, status_code=status, headers=_headers(exc, status, retry_after_s))


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    """Route every row of :data:`ERROR_TABLE` through :func:`error_response`."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, retry_after_s)

    for cls, _ in ERROR_TABLE:
        app.add_exception_handler(cls, handle)
