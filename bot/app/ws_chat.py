"""``/ws/chat``: the end user's live connection.

The client says which conversation and the last sequence number it saw (``hello``); the server replays
what was missed, then streams new events as they are appended — by this process or any other — with
heartbeats in between. Events come through the process's event hub (``bot.app.hub``): the socket holds no
Redis connection of its own. A reconnect never loses or duplicates a message: events are identified by
``seq`` and sent in order, once per connection; a Redis restart only pauses the stream, which resumes from
the last seq sent. A failing background task closes the socket with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.app.background import supervise
from bot.app.deps import check_token, web_message
from bot.app.errors import classify, describe
from bot.app.hub import EventHub, Events, Failed, Inbox, Typing
from bot.engine import Engine, Services
from bot.errors import AuthError, MessageTooLarge
from bot.store.conversations import ConversationNotFound

logger = logging.getLogger(__name__)
router = APIRouter()
HELLO_TIMEOUT_S = 10.0


class Hello(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^hello$")
    conversation_id: str
    token: str
    last_seq: int = Field(0, ge=0)


class ChatFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None
    client_msg_id: str | None = Field(None, max_length=128)
    score: int | None = Field(None, ge=1, le=5)
    comment: str | None = Field(None, max_length=2000)


async def _send(ws: WebSocket, frame: dict[str, Any]) -> None:
    await ws.send_text(json.dumps(frame, ensure_ascii=False))


async def _error(ws: WebSocket, code: str, message: str, **extra: Any) -> None:
    await _send(ws, {"type": "error", "code": code, "message": message, **extra})


@router.websocket("/ws/chat")
async def chat(ws: WebSocket) -> None:
    svc: Services = ws.app.state.services
    eng: Engine = ws.app.state.engine
    await ws.accept()
    svc.metrics.websockets.labels("chat").inc()
    try:
        raw = await asyncio.wait_for(ws.receive_text(), HELLO_TIMEOUT_S)
        hello = Hello.model_validate_json(raw)
        conversation = await svc.store.get(hello.conversation_id)
        if conversation is None:
            raise ConversationNotFound(hello.conversation_id)
        check_token(conversation, hello.token)
    except (TimeoutError, ValidationError, ValueError):
        await _error(
            ws, "bad_hello", 'first frame must be {"type":"hello","conversation_id","token","last_seq"}'
        )
        await ws.close(4400)
        return
    except (AuthError, ConversationNotFound) as exc:
        _, close, _ = classify(exc)
        await _error(ws, "unauthorized" if isinstance(exc, AuthError) else "not_found", str(exc))
        await ws.close(close)
        return
    except WebSocketDisconnect:
        return
    except Exception as exc:  # Redis down during the handshake
        logger.warning("websocket handshake failed: %r", exc)
        _, close, retryable = classify(exc)
        with contextlib.suppress(Exception):
            await _error(ws, "unavailable", describe(exc), retryable=retryable)
            await ws.close(close)
        return

    cid = hello.conversation_id
    await _send(
        ws,
        {
            "type": "hello",
            "conversation_id": cid,
            "state": conversation["state"],
            "seq": int(conversation.get("seq", 0)),
        },
    )
    hub: EventHub = ws.app.state.hub
    inbox = Inbox()
    follow = hub.follow(cid, hello.last_seq, inbox)
    try:
        await supervise(
            ws,
            _read(ws, svc, eng, cid, conversation),
            {"deliver": _deliver(ws, inbox, hello.last_seq, svc.settings.heartbeat_seconds)},
            conversation_id=cid,
        )
    finally:
        hub.unfollow(follow)


async def _deliver(ws: WebSocket, inbox: Inbox, last_seq: int, interval: float) -> None:
    """Send what the hub hands this connection, in order; a heartbeat (with the last seq) every interval."""
    loop = asyncio.get_running_loop()
    next_beat = loop.time() + interval
    while True:
        notice = await inbox.get(next_beat - loop.time())
        if isinstance(notice, Events):
            for event in notice.events:
                if event.get("visibility") != "internal":  # agents' notes never reach the user
                    await _send(ws, event)
                last_seq = event["seq"]
        elif isinstance(notice, Typing) and notice.role == "agent":
            await _send(ws, {"type": "typing", "role": "agent", "ephemeral": True})
        elif isinstance(notice, Failed):
            raise notice.error
        if loop.time() >= next_beat:
            await _send(ws, {"type": "heartbeat", "seq": last_seq})
            next_beat = loop.time() + interval


async def _read(ws: WebSocket, svc: Services, eng: Engine, cid: str, conversation: dict[str, str]) -> None:
    while True:
        raw = await ws.receive_text()
        try:
            frame = ChatFrame.model_validate_json(raw)
        except ValidationError:
            await _error(ws, "bad_frame", "frames are JSON objects with a 'type' (message, typing, csat)")
            continue
        if frame.type == "message":
            await _message(ws, svc, eng, cid, conversation, frame)
        elif frame.type == "typing":
            await svc.store.redis.publish(
                svc.store.keys.typing_channel, json.dumps({"c": cid, "role": "user"})
            )
        elif frame.type == "csat":
            if frame.score is None:
                await _error(ws, "bad_frame", "csat needs a score from 1 to 5")
                continue
            await svc.store.append(
                cid, {"type": "csat", "role": "user", "score": frame.score, "comment": frame.comment or ""}
            )
        elif frame.type in ("pong", "heartbeat"):
            continue
        else:
            await _error(
                ws, "unknown_type", f"unknown frame type {frame.type!r}; use message, typing or csat"
            )


async def _message(
    ws: WebSocket, svc: Services, eng: Engine, cid: str, conversation: dict[str, str], frame: ChatFrame
) -> None:
    if not frame.text or not frame.client_msg_id:
        await _error(
            ws, "bad_frame", "a message needs 'text' and 'client_msg_id'", client_msg_id=frame.client_msg_id
        )
        return
    try:
        if len(frame.text) > svc.settings.max_message_chars:
            raise MessageTooLarge(len(frame.text), svc.settings.max_message_chars)
        # Replies reach the client through the stream; the response itself is not needed here.
        await eng.handle(web_message(ws, conversation, frame.text, frame.client_msg_id))
    except Exception as exc:
        status, _, retryable = classify(exc)
        if status >= 500 and status != 503:
            logger.exception("message %s in %s failed", frame.client_msg_id, cid)
        await _error(
            ws,
            "too_large" if status == 413 else "unavailable" if status == 503 else "failed",
            describe(exc),
            client_msg_id=frame.client_msg_id,
            retryable=retryable,
        )
