"""``/ws/chat`` against frames no client should send: binary, oversized, a hello out of range."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.app.conftest import Chat
from tests.app.test_websocket import hello, receive_until


def test_a_binary_hello_is_refused_with_1003(client: TestClient) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_bytes(b'{"type": "hello"}')
        assert ws.receive_json()["code"] == "binary_frame"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == 1003


def test_a_binary_frame_gets_an_error_and_the_connection_stays(client: TestClient, chat: Chat) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat)
        ws.send_bytes(b"\x00\xff")
        error = receive_until(ws, lambda f: f["type"] == "error")[-1]
        assert error["code"] == "binary_frame" and "text" in error["message"]
        ws.send_text(json.dumps({"type": "message", "text": "你好", "client_msg_id": "m1"}))
        assert receive_until(ws, lambda f: f.get("role") == "bot")


@pytest.mark.parametrize("last_seq", [2**63, 18446744073709551615, -1])
def test_a_hello_with_last_seq_out_of_range_is_refused(client: TestClient, chat: Chat, last_seq: int) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_text(
            json.dumps(
                {"type": "hello", "conversation_id": chat.id, "token": chat.token, "last_seq": last_seq}
            )
        )
        error = ws.receive_json()
        assert error["code"] == "bad_hello" and "last_seq" in error["message"]
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == 4400


def test_an_oversized_frame_is_refused_and_the_connection_stays(client: TestClient, chat: Chat) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws, chat)
        ws.send_text(json.dumps({"type": "message", "text": "x" * 300_000, "client_msg_id": "big"}))
        error = receive_until(ws, lambda f: f["type"] == "error")[-1]
        assert error["code"] == "too_large"
        ws.send_text(json.dumps({"type": "message", "text": "你好", "client_msg_id": "m1"}))
        assert receive_until(ws, lambda f: f.get("role") == "bot")


def test_no_hello_in_time_is_a_retryable_timeout_not_a_malformed_hello(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the bench's well-formed hellos were refused as "bad_hello" (4400): a client is told to retry."""
    monkeypatch.setattr("bot.app.ws_chat.HELLO_TIMEOUT_S", 0.2)
    with client.websocket_connect("/ws/chat") as ws:
        error = ws.receive_json()
        assert error["code"] == "hello_timeout" and error["retryable"] is True
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == 1013
