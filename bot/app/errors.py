"""One place that maps errors to HTTP statuses and websocket close codes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.errors import (
    AlreadyExists,
    AuthError,
    Conflict,
    EmptyMessage,
    Forbidden,
    InputError,
    MalformedPayload,
    MessageTooLarge,
    NotFound,
    RateLimited,
    StillProcessing,
    TriageError,
    Unavailable,
    UnsupportedMediaType,
)
from bot.ownership import TransitionError

logger = logging.getLogger(__name__)

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionRefusedError)
RETRY_AFTER_SECONDS = 2
UNEXPECTED = (500, 1011)

# exception type -> (HTTP status, websocket close code). Looked up along the exception's MRO, so the most
# specific class wins whatever the order here: a subclass of Conflict is 409 unless it has its own entry.
STATUS: dict[type[BaseException], tuple[int, int]] = {
    TriageError: UNEXPECTED,
    InputError: (422, 4400),
    MalformedPayload: (400, 4400),
    EmptyMessage: (422, 4400),
    MessageTooLarge: (413, 1009),
    UnsupportedMediaType: (415, 4415),
    AuthError: (401, 4401),
    RateLimited: (429, 4429),
    Forbidden: (403, 4403),
    NotFound: (404, 4404),
    Conflict: (409, 4409),
    AlreadyExists: (409, 4409),
    TransitionError: (409, 4409),
    Unavailable: (503, 1013),
    StillProcessing: (503, 1013),
    **{kind: (503, 1013) for kind in REDIS_DOWN},
}


def classify(exc: BaseException) -> tuple[int, int, bool]:
    """(HTTP status, websocket close code, retryable) for an exception: its nearest class in ``STATUS``."""
    status, close = next((STATUS[k] for k in type(exc).__mro__ if k in STATUS), UNEXPECTED)
    retryable = isinstance(exc, REDIS_DOWN) or bool(getattr(exc, "retryable", False))
    return status, close, retryable


def describe(exc: BaseException) -> str:
    if isinstance(exc, REDIS_DOWN):
        return "the conversation store (Redis) is unavailable; nothing was lost — retry with the same client_msg_id"
    return str(exc)


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
