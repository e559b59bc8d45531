"""A real server (uvicorn in its own process) and a real browser (Playwright driving Debian's chromium)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from tests.conftest import DATA_DIR, KB_DIR, ROOT
from tests.identity_tokens import SECRET as IDENTITY_SECRET
from tests.live import free_port, wait_until_ready

CHROMIUM = Path(os.environ.get("TRIAGE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"browser tests need chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class LiveServer:
    def __init__(self, url: str, redis_url: str, prefix: str) -> None:
        self.url, self.redis_url, self.prefix = url, redis_url, prefix


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path
) -> Iterator[LiveServer]:
    """Agents count as on duty: handoffs queue (the console tests use presence instead)."""
    env = {"TRIAGE_ON_DUTY": "true", "TRIAGE_IDENTITY_SECRET": IDENTITY_SECRET}
    yield from start_server(tmp_path_factory, redis_url, model_dir, env)


def start_server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path, extra_env: dict[str, str]
) -> Iterator[LiveServer]:
    """A uvicorn process on a free port with its own key prefix; stopped and cleaned up afterwards."""
    port = free_port()
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    var = tmp_path_factory.mktemp("var")
    env = {
        **os.environ,
        "TRIAGE_REDIS_URL": redis_url,
        "TRIAGE_REDIS_PREFIX": prefix,
        "TRIAGE_MODEL_DIR": str(model_dir.parent),
        "TRIAGE_DATA_DIR": str(DATA_DIR),
        "TRIAGE_KB_DIR": str(KB_DIR),
        "TRIAGE_VAR_DIR": str(var),
        "TRIAGE_HEARTBEAT_SECONDS": "1",
        "TRIAGE_ROTA_FILE": str(var / "rota.yml"),
        **extra_env,
    }
    log = (var / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "triagebot.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, process, timeout=60, log=var / "server.log")
    yield LiveServer(url, redis_url, prefix)
    process.terminate()
    process.wait(10)
    log.close()
    client = sync_redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
