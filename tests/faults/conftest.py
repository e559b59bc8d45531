"""Fault tests start their own redis-server and app processes: they kill, freeze and restart them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.kb.search import KnowledgeBase
from bot.nlu.training_data import load_training_data
from handoff_gateway.agents import AgentStore
from tests.conftest import DATA_DIR, KB_DIR
from tests.live import AppProcess, RedisServer, app_env, client_for, start_apps

# One address opens every conversation and sends every message here: the per-client limits would
# measure themselves, not the fault.
UNLIMITED = {"TRIAGE_CONVERSATIONS_PER_MINUTE": "0", "TRIAGE_MESSAGES_PER_MINUTE": "0"}


@pytest.fixture
def own_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """Append-only; ``appendfsync`` by indirect parametrization (``everysec`` unless given)."""
    server = RedisServer(tmp_path / "redis", appendfsync=getattr(request, "param", "everysec")).start()
    yield server
    server.kill()


class Apps:
    """App processes sharing one Redis and one key prefix; every one is stopped (or killed) at the end."""

    def __init__(self, redis: RedisServer, folder: Path, model_dir: Path) -> None:
        self.redis, self.folder, self.model_dir = redis, folder, model_dir
        self.prefix = f"fault:{uuid.uuid4().hex[:8]}:"
        self.processes: list[AppProcess] = []

    def start(self, count: int = 1, **env: str) -> list[AppProcess]:
        new = [
            AppProcess(
                app_env(
                    self.redis.url,
                    self.prefix,
                    self.folder / f"var{len(self.processes) + i}",
                    self.model_dir,
                    **{**UNLIMITED, **env},
                ),
                self.folder / f"app{len(self.processes) + i}.log",
            )
            for i in range(count)
        ]
        self.processes += new  # stopped at the end even when one never became ready
        start_apps(*new, timeout=120)  # a loaded two-core machine starts them slowly
        return new

    def stop(self) -> None:
        for app in self.processes:
            app.stop()


@pytest.fixture(scope="session")
def indexed_models(model_dir: Path) -> Path:
    """The session's NLU with the KB indexed beside it before any app process starts: processes starting
    side by side would each build the index."""
    data = load_training_data(DATA_DIR)
    KnowledgeBase(
        KB_DIR / "articles", model_dir.parent / "kb", KB_DIR / "config.yml", data.synonyms, data.intents
    )
    return model_dir


@pytest.fixture
def apps(own_redis: RedisServer, tmp_path: Path, indexed_models: Path) -> Iterator[Apps]:
    group = Apps(own_redis, tmp_path, indexed_models)
    yield group
    group.stop()


async def new_conversations(url: str, count: int) -> list[dict[str, str]]:
    async with httpx.AsyncClient(timeout=30) as http:

        async def one() -> dict[str, str]:
            response = await http.post(f"{url}/api/v1/conversations", json={})
            response.raise_for_status()
            created: dict[str, str] = response.json()
            return created

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def agent_token(url: str, redis_url: str, prefix: str, name: str, capacity: int = 5) -> tuple[str, str]:
    """Add an agent and sign in: (agent id, session token)."""
    client = client_for(redis_url)
    try:
        record, _ = await AgentStore(client, prefix).add(
            name, "password-123", "agent", ("zh", "en"), capacity, f"客服{name}"
        )
    finally:
        await client.aclose()
    async with httpx.AsyncClient(timeout=30) as http:
        login = await http.post(f"{url}/api/v1/agents/login", json={"name": name, "password": "password-123"})
    login.raise_for_status()
    return record.id, str(login.json()["token"])
