"""A real server (uvicorn in its own process) and a real browser (Playwright driving Debian's chromium)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from tests.identity_tokens import SECRET as IDENTITY_SECRET
from tests.live import AppProcess, app_env

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
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    var = tmp_path_factory.mktemp("var")
    env = app_env(redis_url, prefix, var, model_dir, **extra_env)
    app = AppProcess(env, var / "server.log").start()
    yield LiveServer(app.url, redis_url, prefix)
    app.stop()
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


@pytest.fixture
def browser_context(browser: Any) -> Iterator[Any]:
    """A factory of pages with their own locale, viewport and media features."""
    contexts: list[Any] = []

    def make(locale: str = "zh-CN", **options: Any) -> Any:
        context = browser.new_context(locale=locale, **options)
        contexts.append(context)
        new = context.new_page()
        new.set_default_timeout(15_000)
        return new

    yield make
    for context in contexts:
        context.close()


VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two bounding boxes (Playwright's) overlap by more than a pixel."""
    return (
        a["x"] + a["width"] > b["x"] + 1
        and b["x"] + b["width"] > a["x"] + 1
        and a["y"] + a["height"] > b["y"] + 1
        and b["y"] + b["height"] > a["y"] + 1
    )
