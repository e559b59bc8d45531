"""``/ws/chat``: hello, replay, streaming, heartbeats, reconnect without gaps or duplicates, bad frames."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.app.conftest import Chat


def hello(ws: WebSocketTestSession, chat: Chat, last_seq: int = 0) -> dict[str, Any]:
    ws.send_text(
        json.dumps({"type": "hello", "conversation_id": chat.id, "token": chat.token, "last_seq": last_seq})
    )
    frame: dict[str, Any] = ws.receive_json()
    assert frame["type"] == "hello"
    return frame


def receive_until(ws: WebSocketTestSession, predicate: Any, limit: int = 50) -> list[dict[str, Any]]:
    """Frames up to and including the first one ``predicate`` accepts (heartbeats included)."""
    frames = []
    for _ in range(limit):
        frame = ws.receive_json()
        frames.append(frame)
        if predicate(frame):
            return frames
    raise AssertionError(f"no matching frame in {frames}")


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in frames if f["type"] not in ("heartbeat", "hello", "error")]


def test_message_over_websocket_streams_user_echo_and_bot_reply(client: TestClient, chat: Chat) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        assert hello(ws, chat)["state"] == "bot"
        ws.send_text(json.dumps({"type": "message", "text": "收不到短信验证码", "client_msg_id": "m1"}))
        frames = receive_until(ws, lambda f: f.get("role") == "bot")
    messages = [f for f in frames if f["type"] == "message"]
    assert messages[0]["role"] == "user" and messages[0]["client_msg_id"] == "m1"
    assert messages[1]["buttons"] and seqs(frames) == [1, 2]


def test_reconnect_replays_exactly_what_was_missed(client: TestClient, chat: Chat) -> None:
    chat.say("你好")
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat)
        seen = seqs(receive_until(ws, lambda f: f.get("seq") == 2))
    assert seen == [1, 2]
    chat.say("发票查验失败，提示查验结果不一致")  # while the client is away
    chat.say("谢谢")
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat, last_seq=2)
        replayed = seqs(receive_until(ws, lambda f: f.get("seq") == 6))
    assert replayed == [3, 4, 5, 6]  # nothing lost, nothing repeated


def test_events_from_elsewhere_reach_the_socket(client: TestClient, chat: Chat) -> None:
    store = client.app.state.services.store  # type: ignore[attr-defined]
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat)
        client.portal.call(  # type: ignore[union-attr]
            store.append, chat.id, {"type": "message", "role": "agent", "text": "您好，我是客服小王"}
        )
        frames = receive_until(ws, lambda f: f.get("role") == "agent")
    assert frames[-1]["text"] == "您好，我是客服小王" and frames[-1]["seq"] == 1


def test_heartbeats_when_quiet(client: TestClient, chat: Chat) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat)
        frame = ws.receive_json()
    assert frame == {"type": "heartbeat", "seq": 0}


def test_csat_and_typing_frames(client: TestClient, chat: Chat) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat)
        ws.send_text(json.dumps({"type": "typing"}))
        ws.send_text(json.dumps({"type": "csat", "score": 5, "comment": "很快"}))
        frames = receive_until(ws, lambda f: f["type"] == "csat")
    assert frames[-1]["score"] == 5
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat, last_seq=1)
        ws.send_text(json.dumps({"type": "csat", "score": 9}))
        assert ws.receive_json()["code"] == "bad_frame"


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ("not json", 4400),
        (json.dumps({"type": "message", "text": "hi"}), 4400),
        (json.dumps({"type": "hello", "conversation_id": "nope", "token": "x"}), 4401),  # as a wrong token
    ],
)
def test_bad_hello_is_refused_with_a_close_code(client: TestClient, first: str, code: int) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_text(first)
        assert ws.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == code


def test_wrong_token_is_refused(client: TestClient, chat: Chat) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_text(json.dumps({"type": "hello", "conversation_id": chat.id, "token": "wrong"}))
        assert ws.receive_json()["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == 4401


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("garbage", "bad_frame"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps({"type": "message", "text": "hi"}), "bad_frame"),
        (json.dumps({"type": "message", "text": "x" * 5000, "client_msg_id": "big"}), "too_large"),
    ],
)
def test_bad_frames_get_an_error_and_the_connection_stays(
    client: TestClient, chat: Chat, frame: str, code: str
) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat)
        ws.send_text(frame)
        error = receive_until(ws, lambda f: f["type"] == "error")[-1]
        assert error["code"] == code
        ws.send_text(json.dumps({"type": "message", "text": "你好", "client_msg_id": "after"}))
        assert receive_until(ws, lambda f: f.get("role") == "bot")[-1]["text"]
    assert chat.events()[0]["client_msg_id"] == "after"  # the oversized message was not stored


def test_agent_typing_reaches_the_user(client: TestClient, chat: Chat) -> None:
    store = client.app.state.services.store  # type: ignore[attr-defined]
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat)
        for _ in range(20):  # the subscription starts right after hello; publish until it is listening
            client.portal.call(  # type: ignore[union-attr]
                store.redis.publish, store.keys.typing_channel, json.dumps({"c": chat.id, "role": "agent"})
            )
            frame = ws.receive_json()
            if frame["type"] == "typing":
                break
        else:
            pytest.fail("no typing frame")
    assert frame == {"type": "typing", "role": "agent", "ephemeral": True}
