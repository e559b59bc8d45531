"""Sign-in cost: one scrypt per attempt whatever the name, computed in the CPU pool, not on the event loop."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aredis
from fastapi.testclient import TestClient

from bot.cpu import CpuPool
from bot.errors import AuthError
from handoff_gateway.agents import AgentStore


class ScryptSpy:
    """Wraps the real ``hashlib.scrypt`` and records the thread each computation ran on."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.threads: list[str] = []  # list.append is atomic: safe from the pool's threads

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        self.threads.append(threading.current_thread().name)
        result: bytes = self.real(*args, **kwargs)
        return result

    @property
    def calls(self) -> int:
        return len(self.threads)


@pytest.fixture
def scrypt(monkeypatch: pytest.MonkeyPatch) -> ScryptSpy:
    spy = ScryptSpy(hashlib.scrypt)
    monkeypatch.setattr(hashlib, "scrypt", spy)
    return spy


@pytest.fixture
def cpu() -> Iterator[CpuPool]:
    pool = CpuPool(2)
    yield pool
    pool.shutdown()


@pytest.fixture
async def agents(redis_url: str, redis_prefix: str, cpu: CpuPool) -> AsyncIterator[AgentStore]:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    yield AgentStore(client, redis_prefix, cpu=cpu)
    await client.aclose()


@pytest.mark.parametrize(
    ("name", "password"),
    [("nobody", "password-123"), ("known", "wrong-password"), ("known", "password-123")],
    ids=["unknown name", "wrong password", "right password"],
)
async def test_every_sign_in_costs_exactly_one_scrypt(
    agents: AgentStore, scrypt: ScryptSpy, name: str, password: str
) -> None:
    await agents.add("known", "password-123")
    before = scrypt.calls
    try:
        await agents.login(name, password)
    except AuthError:
        assert password != "password-123" or name != "known"
    assert scrypt.calls - before == 1


async def test_unknown_and_known_names_fail_alike(agents: AgentStore) -> None:
    await agents.add("known", "password-123")
    failures = []
    for name in ("known", "nobody"):
        with pytest.raises(AuthError) as caught:
            await agents.login(name, "wrong-password")
        failures.append((type(caught.value), str(caught.value)))
    assert failures[0] == failures[1]


async def test_hashing_runs_in_the_pool(agents: AgentStore, scrypt: ScryptSpy) -> None:
    agent, _ = await agents.add("pooled", "password-123")
    signed_in, token, _ = await agents.login("pooled", "password-123")
    assert signed_in == agent and (await agents.authenticate(token)).id == agent.id
    assert scrypt.calls == 2 and all(t.startswith("triage-cpu") for t in scrypt.threads)


async def test_without_a_pool_hashing_still_leaves_the_loop(
    redis_url: str, redis_prefix: str, scrypt: ScryptSpy
) -> None:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        store = AgentStore(client, redis_prefix)
        await store.add("threaded", "password-123")
        with pytest.raises(AuthError):
            await store.login("nobody", "password-123")
    finally:
        await client.aclose()
    assert scrypt.calls == 2 and threading.main_thread().name not in scrypt.threads


def test_the_app_signs_in_through_its_pool(desk: TestClient, make_agent: Any, scrypt: ScryptSpy) -> None:
    make_agent("app-pool")
    assert scrypt.calls == 2  # the account's hash, then the sign-in
    assert desk.post("/api/v1/agents/login", json={"name": "ghost", "password": "x" * 8}).status_code == 401
    assert scrypt.calls == 3
    assert all(t.startswith("triage-cpu") for t in scrypt.threads)
