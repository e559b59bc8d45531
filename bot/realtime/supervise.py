"""A connection's tasks, supervised: the reader and the background tasks beside it (delivering what the event
hub hands it, heartbeats). The first to fail is logged with the connection's ids and the socket is closed
with 1011, so a client never sits on a socket nothing feeds any more; the client leaving or the server
shutting down is not an error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

from fastapi import WebSocket

from bot.realtime.frames import GONE

logger = logging.getLogger(__name__)

UNEXPECTED_CLOSE = 1011


def _failure(task: asyncio.Task[None]) -> BaseException | None:
    """The task's error; None when it was cancelled or its client left (a send to a closed socket too)."""
    if task.cancelled():
        return None
    error = task.exception()
    return None if isinstance(error, GONE) else error


async def supervise(
    ws: WebSocket,
    read: Coroutine[Any, Any, None],
    background: dict[str, Coroutine[Any, Any, None]],
    **ids: str,
) -> None:
    """Run ``read`` and the named ``background`` tasks until one of them ends; then stop the others.

    A task ending with an error (other than the client disconnecting) is logged with ``ids`` — conversation
    id, agent id — and closes the socket with 1011."""
    names = {asyncio.create_task(read, name="read"): "read"}
    names.update({asyncio.create_task(coro, name=name): name for name, coro in background.items()})
    try:
        done, _ = await asyncio.wait(names, return_when=asyncio.FIRST_COMPLETED)
        failed = [(names[task], error) for task in done if (error := _failure(task)) is not None]
        left = [task for task in done if not task.cancelled() and isinstance(task.exception(), GONE)]
        if left and not failed:
            who = " ".join(f"{key}={value}" for key, value in ids.items())
            logger.debug("connection closed by the client (%s): %r", who, left[0].exception())
        if failed:
            name, error = failed[0]
            who = " ".join(f"{key}={value}" for key, value in ids.items())
            logger.error("connection task %r failed (%s); closing with 1011", name, who, exc_info=error)
            with contextlib.suppress(Exception):
                await ws.close(UNEXPECTED_CLOSE)
    finally:
        await cancel_all(task for task in names if not task.done())


async def cancel_all(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel and wait for ``tasks``. A task that had already failed is logged; an error raised while being
    cancelled (a cancellation that lands in a Redis call can surface as a connection error) is not — the
    connection is closing either way."""
    tasks = list(tasks)
    already_failed = [t for t in tasks if t.done() and _failure(t) is not None]
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    for task in already_failed:
        logger.error("connection task %r had failed", task.get_name(), exc_info=task.exception())
