"""Shutdown never hangs on a task that shrugs off one cancellation.

Regression test: CI once spent 300 s in an app's shutdown. redis-py can surface a cancellation inside a
read as a ``ConnectionError``; a background loop that retries on Redis errors then goes round again, and a
shutdown that cancelled once and awaited the task waited forever."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.tasks import cancel_and_wait


async def _retrying_loop(swallow: int) -> None:
    """A reconnect loop whose first ``swallow`` cancellations look like connection errors to it."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if swallow <= 0:
                raise
            swallow -= 1  # "the connection dropped": retry


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    task = asyncio.create_task(_retrying_loop(swallow=3))
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], timeout=5.0), timeout=5.0)
    assert task.cancelled()


async def test_a_task_that_never_stops_is_named_and_left_behind(caplog: pytest.LogCaptureFixture) -> None:
    task = asyncio.create_task(_retrying_loop(swallow=10**9), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="bot.tasks"):
        await asyncio.wait_for(cancel_and_wait([task], timeout=0.3), timeout=5.0)
    assert not task.done()
    assert "stubborn did not stop" in caplog.text
    task.get_coro().close()  # type: ignore[union-attr]


async def test_errors_of_stopped_tasks_are_retrieved() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0.01)
    await cancel_and_wait([task])
    assert task.done() and not task.cancelled()
