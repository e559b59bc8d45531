"""Stopping background tasks for sure.

``task.cancel()`` only asks: a task whose loop catches the error a cancelled Redis call surfaces as (redis-py
may turn a cancellation inside a read into a ``ConnectionError``) goes round its retry loop and never ends,
and a shutdown that awaits it hangs. :func:`cancel_and_wait` cancels again until the task is done or the
deadline passes, then names what would not stop instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], timeout: float = 5.0) -> None:
    """Cancel ``tasks`` and wait up to ``timeout`` seconds for them to end, cancelling again while any runs.

    Errors the tasks end with are dropped: a task being shut down has nobody to report to.
    """
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    deadline = time.monotonic() + timeout
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - time.monotonic()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(0.1, left))
    for task in pending:
        logger.error("task %s did not stop within %.1f s; leaving it behind", task.get_name(), timeout)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log "exception was never retrieved"
