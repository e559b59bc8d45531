"""Analytics across processes and restarts: every app process serves the same numbers, and a process
started later carries on from the rollup's cursors in Redis instead of counting anything again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aredis

from handoff_gateway.agents import AgentStore
from tests.browser.conftest import LiveServer, start_server

FIGURES = ("conversations", "answered", "deflected", "fallbacks", "top_intents", "top_fallbacks", "daily")


async def _supervisor_token(server: LiveServer) -> str:
    client = aredis.Redis.from_url(server.redis_url, decode_responses=True)
    try:
        await AgentStore(client, server.prefix).add("boss", "password-123", "supervisor", ("zh", "en"), 3)
    finally:
        await client.aclose()
    async with httpx.AsyncClient() as http:
        login = await http.post(
            f"{server.url}/api/v1/agents/login", json={"name": "boss", "password": "password-123"}
        )
    return str(login.json()["token"])


async def _converse(http: httpx.AsyncClient, server: LiveServer, text: str) -> None:
    conv = (await http.post(f"{server.url}/api/v1/conversations", json={})).json()
    said = await http.post(
        f"{server.url}/api/v1/conversations/{conv['conversation_id']}/messages",
        headers={"Authorization": f"Bearer {conv['token']}"},
        json={"text": text, "client_msg_id": "m1"},
    )
    assert said.status_code == 200, said.text


async def _figures(http: httpx.AsyncClient, server: LiveServer, token: str) -> dict[str, Any]:
    response = await http.get(f"{server.url}/api/v1/analytics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    return {k: body[k] for k in FIGURES}


async def _settled(
    http: httpx.AsyncClient, servers: list[LiveServer], token: str, conversations: int
) -> list[Any]:
    """Every server's figures once they count ``conversations`` (polled, with a deadline)."""
    deadline = time.monotonic() + 20
    while True:
        seen = [await _figures(http, s, token) for s in servers]
        if all(f["conversations"] == conversations for f in seen) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.2)


@pytest.fixture
def first(tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path) -> Iterator[LiveServer]:
    """Rolls up once, at start: the later processes do the rest (and own nothing it would redo)."""
    yield from start_server(
        tmp_path_factory, redis_url, model_dir, {"TRIAGE_ANALYTICS_INTERVAL_SECONDS": "3600"}
    )


@pytest.mark.faults  # a process stopped and another started: make test-faults
async def test_two_processes_and_a_restart_serve_the_same_numbers(
    first: LiveServer, tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path
) -> None:
    def another() -> Iterator[LiveServer]:
        env = {"TRIAGE_REDIS_PREFIX": first.prefix, "TRIAGE_ANALYTICS_INTERVAL_SECONDS": "0.2"}
        return start_server(tmp_path_factory, redis_url, model_dir, env)

    token = await _supervisor_token(first)
    second_process = another()
    second = next(second_process)
    async with httpx.AsyncClient(timeout=30) as http:
        for server in (first, second, first):
            await _converse(http, server, "发票查验失败怎么办")
        await _converse(http, second, "啊吧啊吧嗯嗯咕噜")
        a, b = await _settled(http, [first, second], token, 4)
        assert a == b
        assert (a["conversations"], a["answered"], a["deflected"], a["fallbacks"]) == (4, 3, 3, 1)

        # The second process stops; a third starts from the cursors in Redis and rolls up what is new.
        with pytest.raises(StopIteration):
            next(second_process)
        third_process = another()
        third = next(third_process)
        try:
            await _converse(http, first, "发票查验失败怎么办")
            a, c = await _settled(http, [first, third], token, 5)
            assert a == c
            assert (a["conversations"], a["answered"], a["deflected"], a["fallbacks"]) == (5, 4, 4, 1)
            assert a["top_intents"][0] == {"intent": "invoice_verification_failed", "count": 4}
        finally:
            with pytest.raises(StopIteration):
                next(third_process)
