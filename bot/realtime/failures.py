"""How a failure reaches a client: its HTTP status, its websocket close code, whether retrying can help, and
the words for it. Used by the HTTP error handlers (bot/app/errors.py) and by every websocket."""

from __future__ import annotations

from redis.exceptions import ClusterError, ReadOnlyError, SlotNotCoveredError, TryAgainError
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

# Redis away, or failing over: a cluster whose master just died answers CLUSTERDOWN/TRYAGAIN or runs out of
# redirections (ClusterError) until its replica is promoted, and a demoted Sentinel primary refuses writes
# (READONLY) until the client reconnects to the new one. Each passes by itself: the client retries.
REDIS_DOWN = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionRefusedError,
    ClusterError,
    SlotNotCoveredError,
    TryAgainError,
    ReadOnlyError,
)
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
