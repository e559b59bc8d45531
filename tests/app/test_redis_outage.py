"""Redis going away: 503 with Retry-After, nothing half-stored, and the retry processed exactly once."""

from __future__ import annotations

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
