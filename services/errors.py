"""Errors into HTTP answers. Every error answer is JSON: ``{"detail": ..., "error": ...}``.

The project's errors carry their own status (``http_status``; the one table is in :mod:`model.errors`); this
module adds the few that only exist at the HTTP boundary (a refused parameter, authentication, overload,
readiness) and the statuses of the web framework's own exceptions. Nothing a client sends can reach the final
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

from model.errors import ColorizeError

log = logging.getLogger(__name__)


class ApiError(ColorizeError):
    """An HTTP-level refusal raised by the API layer itself (bad parameters, bad multipart, bad Accept)."""

    exit_code = 2

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.http_status = status
        self.detail = detail
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return self.http_status


class UnauthorizedError(ColorizeError):
    """The request lacks the configured bearer token, or carries a wrong one."""

    http_status = 401
    exit_code = 2


class OverloadedError(ColorizeError):
    """The model's queue is full, admission refused the request, or the server is stopping: the client should
    retry after a short wait. ``detail`` and ``retry_after_s`` override the generic message and the
    configured Retry-After (admission knows how long its queue needs to drain)."""

    http_status = 503

    def __init__(self, message: str = "", *, detail: str | None = None, retry_after_s: int | None = None) -> None:
        super().__init__(message or detail or "overloaded")
        self.detail = detail
        self.retry_after_s = retry_after_s


class NotReadyError(OverloadedError):
    """The model deployment has not answered a readiness check yet (``/readyz``)."""


# The web framework's and Serve's own exceptions, which carry no ``http_status`` of ours: (class, status), the
# first row whose class matches decides. Every error of this project answers with its own ``http_status``
# (model/errors.py lists them all).
FRAMEWORK_TABLE: tuple[tuple[type[Exception], int], ...] = (
    (RequestValidationError, 422),
    (ClientDisconnect, 400),  # nobody reads it; it keeps a vanished client from looking like a server error
    # Serve registers its own plain-text handlers for these two on the ingress app, so the ingress turns
    # them into OverloadedError where it calls the model; the rows keep status_for() complete.
    (BackPressureError, 503),
    (DeploymentUnavailableError, 503),
    (Exception, 500),
)


def status_for(exc: BaseException) -> int:
    if isinstance(exc, ColorizeError):
        return exc.http_status
    for cls, status in FRAMEWORK_TABLE:
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
    """The JSON answer for ``exc``: its status (:func:`status_for`), a ``detail`` and the error's name."""
    status = status_for(exc)
    if status >= 500 and status != 503:
        log.error("unexpected error answering a request", exc_info=exc)
    body = {"detail": _detail(exc, status), "error": type(exc).__name__}
    return JSONResponse(body, status_code=status, headers=_headers(exc, status, retry_after_s))


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    """Route the project's errors and every row of :data:`FRAMEWORK_TABLE` through :func:`error_response`."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, retry_after_s)

    handled: list[type[Exception]] = [ColorizeError, *(cls for cls, _ in FRAMEWORK_TABLE)]
    for cls in handled:
        app.add_exception_handler(cls, handle)
