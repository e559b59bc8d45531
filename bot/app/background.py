"""Background tasks of a connection (stream followers, subscriptions, heartbeats)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


async def cancel_all(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel and wait for ``tasks``; a cancellation that surfaces inside a Redis call as a connection error
    is swallowed too — the connection is closing either way."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
