"""``/ws/agent`` against frames no console sends: binary, deeply nested JSON, oversized."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.gateway.conftest import Agent

NESTED = "[" * 5_000 + "]" * 5_000  # under the frame limits: deep enough to exhaust a recursive parser
HUGE_NESTED = "[" * 100_000 + "]" * 100_000


def refused(ws: WebSocketTestSession) -> tuple[dict[str, Any], int]:
    """The error frame, then the close code."""
    error = ws.receive_json()
    with pytest.raises(WebSocketDisconnect) as info:
        ws.receive_json()
    return error, info.value.code


def signed_in(ws: WebSocketTestSession, agent: Agent) -> None:
    ws.send_text(json.dumps({"type": "hello", "token": agent.token}))
    while ws.receive_json()["type"] != "queue":
        pass


def test_a_binary_hello_is_refused_with_1003(desk: TestClient) -> None:
    with desk.websocket_connect("/ws/agent") as ws:
        ws.send_bytes(b'{"type": "hello"}')
        error, code = refused(ws)
    assert (error["code"], code) == ("binary_frame", 1003)


@pytest.mark.parametrize(
    ("hello", "expected"),
    [
        (NESTED, ("bad_hello", 1007)),
        ('{"type": "hello", "token": ' + NESTED + "}", ("bad_hello", 1007)),
        (HUGE_NESTED, ("too_large", 1009)),
        ('{"type": "hello", "token": "' + "t" * 100_000 + '"}', ("too_large", 1009)),
    ],
    ids=["nested", "nested-token", "huge-nested", "oversized"],
)
def test_a_hostile_hello_is_refused_clearly(desk: TestClient, hello: str, expected: tuple[str, int]) -> None:
    with desk.websocket_connect("/ws/agent") as ws:
        ws.send_text(hello)
        error, code = refused(ws)
    assert (error["code"], code) == expected
    assert "hello" in error["message"]


def test_bad_frames_after_hello_get_an_error_and_the_console_stays(desk: TestClient, make_agent: Any) -> None:
    agent = make_agent("frames")
    with desk.websocket_connect("/ws/agent") as ws:
        signed_in(ws, agent)
        for frame, code in ((b"\x00\xff", "binary_frame"), (NESTED, "bad_frame"), (HUGE_NESTED, "too_large")):
            if isinstance(frame, bytes):
                ws.send_bytes(frame)
            else:
                ws.send_text(frame)
            while (reply := ws.receive_json())["type"] != "error":
                pass
            assert reply["code"] == code
        ws.send_text(json.dumps({"type": "presence", "status": "away"}))
        while (reply := ws.receive_json())["type"] != "presence":
            pass
        assert reply["status"] == "away"
