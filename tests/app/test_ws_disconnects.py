"""Clients that vanish — before the hello is answered, while replies stream, while a console starts — are
a normal end of a connection: one line each in the log, no traceback. A real uvicorn serves the app in this
test's event loop, so that a send to a dead socket fails the way it does in production."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from tests.live import free_port
from triagebot.app import create_app

SERVER_LOGGERS = ("bot", "handoff_gateway", "triagebot", "uvicorn", "starlette", "fastapi")


@pytest.fixture
async def served(
    settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> AsyncIterator[tuple[FastAPI, str]]:
    app = create_app(settings, nlu=nlu, kb=knowledge_base)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", lifespan="on"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(60):
        while not server.started:
            await asyncio.sleep(0.05)
    try:
        yield app, f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def vanish(ws: Any) -> None:
    ws.transport.abort()  # no close frame: the TCP connection is simply gone


@pytest.mark.timeout(120)
async def test_clients_that_vanish_leave_no_traceback(
    served: tuple[FastAPI, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app, host = served
    gw = app.state.gateway
    await gw.agents.add("gone", "password-123", "agent", ("zh", "en"), 3)
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as http:
        convs = [(await http.post("/api/v1/conversations", json={})).json() for _ in range(12)]
        login = await http.post("/api/v1/agents/login", json={"name": "gone", "password": "password-123"})
        token = login.json()["token"]

    async def chat(conv: dict[str, str], stage: int) -> None:
        ws = await websockets.connect(f"ws://{host}/ws/chat")
        hello = {"type": "hello", "conversation_id": conv["conversation_id"], "token": conv["token"]}
        await ws.send(json.dumps(hello))
        if stage == 0:  # before the server's hello
            return await vanish(ws)
        await ws.recv()
        for i in range(20):  # replies stream back while the client disappears
            await ws.send(json.dumps({"type": "message", "text": "发票查验失败", "client_msg_id": f"m{i}"}))
        if stage == 2:
            await ws.recv()
        await vanish(ws)

    async def console(stage: int) -> None:
        ws = await websockets.connect(f"ws://{host}/ws/agent")
        await ws.send(json.dumps({"type": "hello", "token": token}))
        if stage:
            await ws.recv()
        await vanish(ws)

    await asyncio.gather(
        *(chat(conv, i % 3) for i, conv in enumerate(convs)), *(console(stage) for stage in (0, 1, 0, 1))
    )
    await asyncio.sleep(3)  # heartbeats (0.5 s) and replies meet the dead sockets
    tracebacks = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.exc_info and r.name.startswith(SERVER_LOGGERS)
    ]
    assert tracebacks == []
