"""A widget that stops reading (its TCP window full, the server's send blocked) cannot stall anyone else:
the other conversations on the same app process keep their round trips short, and the stalled one, once it
reads again, gets every event in order."""

from __future__ import annotations

import asyncio
import json
import time

import psutil
import pytest
import websockets

from tests.faults.clients import User, stored_seq
from tests.faults.conftest import Apps, new_conversations
from tests.faults.test_app_kill import append_backlog

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

FLOOD = 400  # events of ~3,000 characters for the stalled socket: megabytes, far beyond the socket buffers
ROUND_TRIP_BOUND_S = 2.0


async def until_quiet(pid: int, timeout: float = 30.0) -> None:
    """Until the process uses under a fifth of a core over half a second."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    process.cpu_percent()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if process.cpu_percent() < 20:
            return
    raise AssertionError(f"the app process stayed busy for {timeout} s")


async def test_a_socket_that_stops_reading_stalls_no_other_conversation(apps: Apps) -> None:
    [app] = apps.start(1)
    [stalled, *others] = await new_conversations(app.url, 5)
    # max_queue=1: once a frame waits unread, the client library stops reading the socket altogether.
    slow = await websockets.connect(app.ws_url + "/ws/chat", max_queue=1, max_size=None)
    await slow.send(
        json.dumps(
            {"type": "hello", "conversation_id": stalled["conversation_id"], "token": stalled["token"]}
        )
    )
    users = [User(conv, [app.ws_url]) for conv in others]
    await asyncio.gather(*(user.connect() for user in users))
    # Before the stall: the process's first parses load lazily what the NLU needs (seconds, once).
    await asyncio.gather(*(user.say("你好", "warm-up", timeout=30) for user in users))

    await append_backlog(apps.redis.url, apps.prefix, [stalled["conversation_id"]], FLOOD, text="账" * 3000)
    # Measure the stall, not the cost of the flood: once the process has read the flood and written what the
    # stalled socket takes, it goes quiet.
    await until_quiet(app.pid)
    round_trips: list[float] = []

    async def talk(user: User) -> None:
        for i in range(8):
            started = time.monotonic()
            await user.say("你好", f"rt-{i}", timeout=30)
            round_trips.append(time.monotonic() - started)

    await asyncio.gather(*(talk(user) for user in users))
    assert max(round_trips) < ROUND_TRIP_BOUND_S, sorted(round_trips)[-5:]

    # The stalled client reads again: everything, in order, once.
    final = await stored_seq(apps.redis.url, apps.prefix, stalled["conversation_id"])
    seqs: list[int] = []
    while not seqs or seqs[-1] < final:
        frame = json.loads(await asyncio.wait_for(slow.recv(), 30))
        if "seq" in frame and frame["type"] not in ("hello", "heartbeat"):
            seqs.append(frame["seq"])
    assert seqs == list(range(1, final + 1))
    await slow.close()
    await asyncio.gather(*(user.close() for user in users))
