"""Redis unreachable (killed) and Redis frozen (SIGSTOP: connections are accepted, nothing is answered),
against a real app process: the API answers 503 with Retry-After within a bound, /readyz answers within a
second, open sockets get a retryable error frame, new sockets are refused as retryable, and the service
recovers by itself once Redis is back (SIGCONT, restart)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest
import websockets

from tests.faults.clients import User
from tests.faults.conftest import Apps, new_conversations
from tests.live import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

API_BOUND_S = 8.0  # a request answers 503 within this while Redis does not answer
READY_BOUND_S = 1.0


def outage(redis: RedisServer, kind: str) -> tuple[Callable[[], object], Callable[[], object]]:
    """(how Redis goes away, how it comes back)."""
    if kind == "frozen":
        return redis.freeze, redis.thaw
    return redis.kill, redis.start


@pytest.mark.parametrize("kind", ["unreachable", "frozen"])
async def test_outage_is_503_with_retry_after_then_recovers_by_itself(apps: Apps, kind: str) -> None:
    [app] = apps.start(1, TRIAGE_REDIS_TIMEOUT_SECONDS="2")  # a frozen Redis costs each request this
    [conv, other] = await new_conversations(app.url, 2)
    user = User(conv, [app.ws_url])
    await user.connect()
    await user.say("你好", "before")
    headers = {"Authorization": f"Bearer {other['token']}"}
    post = f"{app.url}/api/v1/conversations/{other['conversation_id']}/messages"
    go, back = outage(apps.redis, kind)

    go()
    async with httpx.AsyncClient(timeout=30) as http:
        started = time.monotonic()
        ready = await http.get(f"{app.url}/readyz")
        assert time.monotonic() - started < READY_BOUND_S
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] is False

        started = time.monotonic()
        down = await http.post(post, headers=headers, json={"text": "发票查验失败", "client_msg_id": "d1"})
        took = time.monotonic() - started
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"] and down.json()["retryable"] is True
        assert took < API_BOUND_S, f"503 after {took:.1f} s"

        # The open socket says "retry"; a new one is refused as retryable (close 1013), not left hanging.
        await user.send({"type": "message", "text": "发票查验失败", "client_msg_id": "d2"})
        assert await user.until(lambda: "d2" in user.refused, API_BOUND_S + 2)
        assert user.refused["d2"]["code"] == "unavailable" and user.refused["d2"]["retryable"] is True
        async with websockets.connect(app.ws_url + "/ws/chat") as ws:
            started = time.monotonic()
            await ws.send(
                json.dumps(
                    {"type": "hello", "conversation_id": other["conversation_id"], "token": other["token"]}
                )
            )
            refusal = json.loads(await asyncio.wait_for(ws.recv(), API_BOUND_S + 2))
            assert refusal["code"] == "unavailable" and refusal["retryable"] is True
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

        back()
        # By itself: the same client, the same socket, the same message id.
        started = time.monotonic()
        await user.say("发票查验失败", "d2", timeout=30)
        while (ready := await http.get(f"{app.url}/readyz")).status_code != 200:
            assert time.monotonic() - started < 30, ready.text
            await asyncio.sleep(0.2)
        again = await http.post(post, headers=headers, json={"text": "发票查验失败", "client_msg_id": "d1"})
        assert again.status_code == 200, again.text
    assert user.reconnects == 0  # the socket stayed open throughout
    await user.close()
