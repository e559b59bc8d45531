"""The sign-in lockout against a real ``triage serve`` process: a client rotating ``X-Forwarded-For`` is
still one address (proxy headers are believed only from ``TRIAGE_TRUSTED_PROXIES``), failures count per
name as well, and during a lockout even the right password is refused with 429 and Retry-After."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as sync_redis

from bot.settings import Settings
from bot.store.keys import Keys
from handoff_gateway.agents import hash_password
from tests.conftest import DATA_DIR, KB_DIR, ROOT
from tests.live import free_port, wait_until_ready

PASSWORD = "password-123"


def serve(tmp: Path, redis_url: str, model_dir: Path, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """``triage serve`` on a free port with a key prefix of its own: (url, prefix)."""
    port, prefix = free_port(), f"test:{uuid.uuid4().hex[:10]}:"
    log_path = tmp / "serve.log"
    full_env = {
        **os.environ,
        "TRIAGE_REDIS_URL": redis_url,
        "TRIAGE_REDIS_PREFIX": prefix,
        "TRIAGE_MODEL_DIR": str(model_dir.parent),
        "TRIAGE_DATA_DIR": str(DATA_DIR),
        "TRIAGE_KB_DIR": str(KB_DIR),
        "TRIAGE_VAR_DIR": str(tmp / "var"),
        "TRIAGE_ROTA_FILE": str(tmp / "rota.yml"),
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "triagebot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, process, timeout=90, log=log_path)
            yield url, prefix
        finally:
            process.terminate()
            process.wait(10)
            client = sync_redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path
) -> Iterator[tuple[str, str]]:
    """No TRIAGE_TRUSTED_PROXIES: the default, trusting no proxy (not even loopback)."""
    for url, prefix in serve(tmp_path_factory.mktemp("serve"), redis_url, model_dir, {}):
        client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            for name in ("target", "bystander"):
                agent_id = f"a-{name}"
                client.hset(Keys(prefix).agents_by_name, name, agent_id)
                client.hset(
                    Keys(prefix).agent(agent_id),
                    mapping={
                        "id": agent_id,
                        "name": name,
                        "role": "agent",
                        "skills": '["zh"]',
                        "capacity": 1,
                        "password": hash_password(PASSWORD),
                    },
                )
                client.sadd(Keys(prefix).agents, agent_id)
        finally:
            client.close()
        yield url, prefix


@pytest.fixture
def url(server: tuple[str, str], redis_url: str) -> str:
    """The server, with no failed sign-ins counted yet."""
    base, prefix = server
    client = sync_redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(Keys(prefix).login_failures("*")))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
    return base


def sign_in(url: str, name: str, password: str, forwarded_for: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/agents/login",
        json={"name": name, "password": password},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=10,
    )


def test_rotating_x_forwarded_for_does_not_escape_the_lockout(url: str) -> None:
    statuses = [sign_in(url, "target", f"guess-{i:04d}", f"203.0.113.{i + 1}").status_code for i in range(30)]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 25  # 5 guesses, not 30
    right = sign_in(url, "target", PASSWORD, "198.51.100.7")
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0


def test_an_address_spraying_names_is_locked_out_too(url: str) -> None:
    """The same address trying many names (the per-name limit never trips): locked out by address."""
    statuses = [sign_in(url, f"user{i}", "wrong-password", f"192.0.2.{i + 1}").status_code for i in range(25)]
    assert statuses == [401] * 20 + [429] * 5  # 4 names' worth from one address (an office's NAT)
    assert sign_in(url, "bystander", PASSWORD, "192.0.2.200").status_code == 429


@pytest.mark.parametrize(
    ("trusted", "proxy_headers", "allowed"),
    [("", False, []), ("10.0.0.1, 10.0.0.2", True, ["10.0.0.1", "10.0.0.2"]), ("*", True, ["*"])],
)
def test_serve_trusts_proxy_headers_only_from_configured_proxies(
    trusted: str, proxy_headers: bool, allowed: list[str]
) -> None:
    from triagebot.serve import uvicorn_options

    options = uvicorn_options(Settings(trusted_proxies=trusted))
    assert options["proxy_headers"] is proxy_headers and options["forwarded_allow_ips"] == allowed
