"""Redis going away: 503 with Retry-After, nothing half-stored, and the retry processed exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from tests.app.conftest import Chat
from tests.live import RedisServer
from triagebot.app import create_app


def test_outage_then_retry_is_processed_once(
    tmp_path: Path, settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        own = settings.model_copy(update={"redis_url": server.url})
        with TestClient(create_app(own, nlu=nlu, kb=knowledge_base)) as client:
            chat = Chat(client)
            chat.say("你好", client_msg_id="a")
            server.stop()
            down = chat.post("发票查验失败", client_msg_id="b")
            assert down.status_code == 503
            assert down.headers["Retry-After"] == "2"
            assert down.json()["retryable"] is True and "retry" in down.json()["detail"]
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["redis"] is False
            server.start()  # same port and folder: the append-only file brings the data back
            retried = chat.say("发票查验失败", client_msg_id="b")
            assert retried["replies"]
            users = [e for e in chat.events() if e.get("role") == "user"]
            assert [u["client_msg_id"] for u in users] == ["a", "b"]
    finally:
        server.stop()


def test_concurrent_requests_succeed_right_after_a_redis_restart(
    tmp_path: Path, settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    """With TRIAGE_REDIS_URL, every pooled connection a restart closed reconnects and retries its command
    (the retry policy is on the pool's connections): no request in flight after the restart gets 503."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        own = settings.model_copy(update={"redis_url": server.url})
        with TestClient(create_app(own, nlu=nlu, kb=knowledge_base)) as client:
            chats = [Chat(client) for _ in range(8)]
            with ThreadPoolExecutor(8) as pool:  # several pooled connections in use at once
                list(pool.map(lambda chat: chat.say("你好", client_msg_id="before"), chats))
                server.stop()
                server.start()  # same port and folder: every pooled connection is now a dead socket
                after = list(pool.map(lambda chat: chat.post("发票查验失败", client_msg_id="after"), chats))
            assert [r.status_code for r in after] == [200] * 8, [
                r.text for r in after if r.status_code != 200
            ]
    finally:
        server.stop()
