"""One place that maps errors to HTTP statuses and websocket close codes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bot.errors import RateLimited, TriageError
from bot.realtime.failures import REDIS_DOWN, RETRY_AFTER_SECONDS, UNEXPECTED, classify, describe

logger = logging.getLogger(__name__)

__all__ = ["REDIS_DOWN", "RETRY_AFTER_SECONDS", "UNEXPECTED", "classify", "describe", "install"]


def error_response(exc: BaseException) -> JSONResponse:
    """The one error body, ``{"error", "detail", "retryable"}``, with its status (and Retry-After)."""
    status, _, retryable = classify(exc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(
        {"error": type(exc).__name__, "detail": describe(exc), "retryable": retryable},
        status_code=status,
        headers=headers,
    )


def validation_response(errors: Iterable[Mapping[str, Any]]) -> JSONResponse:
    """422 in FastAPI's shape, ``{"detail": [{"loc", "msg", "type"}]}`` — without the ``input`` (and the
    ``ctx``) pydantic adds: what a client sent is never echoed back, whatever it holds."""
    detail = [
        {
            "loc": [_short(part) for part in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": e.get("type"),
        }
        for e in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _short(part: Any) -> Any:
    """A field name is the client's too (an unknown field's): at most 64 characters of it."""
    return part[:64] if isinstance(part, str) else part


def install(app: FastAPI) -> None:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        if classify(exc)[0] >= 500:
            logger.warning("%s %s failed: %r", request.method, request.url.path, exc)
        return error_response(exc)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_response(exc.errors())

    app.add_exception_handler(TriageError, handler)
    app.add_exception_handler(RequestValidationError, invalid)
    for kind in REDIS_DOWN:
        app.add_exception_handler(kind, handler)
