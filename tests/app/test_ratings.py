"""One rating per conversation: the first stands; a second is refused (``already_rated``, 409)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.app.conftest import Chat
from tests.app.test_websocket import hello, receive_until


def test_a_second_rating_is_refused_and_not_stored(client: TestClient, chat: Chat) -> None:
    chat.say("你好")
    seen = chat.events()[-1]["seq"]
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat, last_seq=seen)
        ws.send_text(json.dumps({"type": "csat", "score": 4, "comment": "很快"}))
        receive_until(ws, lambda f: f.get("type") == "csat")
    # A reloaded page, another tab: the old prompt is answered again.
    with client.websocket_connect("/ws/chat") as ws:
        first = hello(ws, chat, last_seq=seen + 1)
        ws.send_text(json.dumps({"type": "csat", "score": 1}))
        error = receive_until(ws, lambda f: f.get("type") == "error")[-1]
    assert error["code"] == "already_rated" and error["retryable"] is False
    ratings = [e for e in chat.events() if e["type"] == "csat"]
    assert [(r["score"], r["comment"]) for r in ratings] == [(4, "很快")]
    assert first["script"] == "Hans"  # the hello names the conversation's script for the widget's labels
