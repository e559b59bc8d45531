"""``/ws/chat``: the end user's live connection.

The client says which conversation and the last sequence number it saw (``hello``); the server replays
what was missed, then streams new events as they are appended — by this process or any other — with
heartbeats in between. Events come through the process's event hub (``bot.realtime.hub``): the socket holds no
Redis connection of its own. A reconnect never loses or duplicates a message: events are identified by
``seq`` and sent in order, once per connection; a Redis restart only pauses the stream, which resumes from
the last seq sent. A failing background task closes the socket with 1011.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.app.deps import check_token, web_message
from bot.app.errors import classify, describe
from bot.app.schemas import MAX_SEQ
from bot.engine import Engine, Services
from bot.errors import AuthError, MessageTooLarge, RateLimited
from bot.realtime.frames import (
    GONE,
    HELLO_CHARS,
    BinaryFrame,
    FrameTooLarge,
    frame_limit,
    gone,
    receive_text,
    refusal,
    refuse,
    send_json,
)
from bot.realtime.hub import EventHub, Events, Failed, Inbox, Typing
from bot.realtime.supervise import supervise
from bot.store import ratings
from bot.store.conversations import ConversationNotFound

logger = logging.getLogger(__name__)
router = APIRouter()
HELLO_TIMEOUT_S = 10.0
TRY_AGAIN_LATER = 1013
ERROR_CODES = {413: "too_large", 429: "rate_limited", 503: "unavailable"}  # an error frame's code by status


class Hello(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^hello$")
    conversation_id: str
    token: str
    last_seq: int = Field(0, ge=0, le=MAX_SEQ)


class ChatFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None
    client_msg_id: str | None = Field(None, max_length=128)
    score: int | None = Field(None, ge=1, le=5)
    comment: str | None = Field(None, max_length=2000)


HELLO_SHAPE = 'first frame must be {"type":"hello","conversation_id","token","last_seq"}'


async def _error(ws: WebSocket, code: str, message: str, **extra: Any) -> None:
    await send_json(ws, {"type": "error", "code": code, "message": message, **extra})


def _hello_problem(exc: ValidationError) -> str:
    """What is wrong with a hello, without echoing what was sent."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{HELLO_SHAPE}: {where + ': ' if where else ''}{first['msg']}"


@router.websocket("/ws/chat")
async def chat(ws: WebSocket) -> None:
    svc: Services = ws.app.state.services
    eng: Engine = ws.app.state.engine
    await ws.accept()
    svc.metrics.websockets.labels("chat").inc()
    try:
        raw = await asyncio.wait_for(receive_text(ws, HELLO_CHARS), HELLO_TIMEOUT_S)
        hello = Hello.model_validate_json(raw)
        # No such conversation and a wrong token are refused alike (4401): ids cannot be probed.
        conversation = await svc.store.get(hello.conversation_id) or {}
        check_token(conversation, hello.token)
    except (BinaryFrame, FrameTooLarge) as exc:
        code, close = refusal(exc)
        await refuse(ws, code, f"{HELLO_SHAPE}: {exc}", close)
        return
    except ValidationError as exc:
        await refuse(ws, "bad_hello", _hello_problem(exc), 4400)
        return
    except TimeoutError:
        # No hello in time: a client that has not sent one, or a server too busy to read it. Either may try
        # again later (1013); under load a well-formed hello used to be refused as malformed (4400).
        await refuse(
            ws,
            "hello_timeout",
            f"no hello within {HELLO_TIMEOUT_S:.0f} s; reconnect and send it first",
            TRY_AGAIN_LATER,
            retryable=True,
        )
        return
    except ValueError:
        await refuse(ws, "bad_hello", HELLO_SHAPE, 4400)
        return
    except (AuthError, ConversationNotFound) as exc:
        _, close, _ = classify(exc)
        await refuse(ws, "unauthorized" if isinstance(exc, AuthError) else "not_found", str(exc), close)
        return
    except GONE as exc:
        gone("chat hello", exc)
        return
    except Exception as exc:  # Redis down during the handshake
        logger.warning("websocket handshake failed: %r", exc)
        _, close, retryable = classify(exc)
        await refuse(ws, "unavailable", describe(exc), close, retryable=retryable)
        return

    cid = hello.conversation_id
    try:
        await send_json(
            ws,
            {
                "type": "hello",
                "conversation_id": cid,
                "state": conversation["state"],
                "seq": int(conversation.get("seq", 0)),
                "script": conversation.get("script", ""),  # the widget's labels follow the user's script
            },
        )
    except GONE as exc:
        gone("chat hello", exc)
        return
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
                    await send_json(ws, event)
                last_seq = event["seq"]
        elif isinstance(notice, Typing) and notice.role == "agent":
            await send_json(ws, {"type": "typing", "role": "agent", "ephemeral": True})
        elif isinstance(notice, Failed):
            raise notice.error
        if loop.time() >= next_beat:
            await send_json(ws, {"type": "heartbeat", "seq": last_seq})
            next_beat = loop.time() + interval


async def _read(ws: WebSocket, svc: Services, eng: Engine, cid: str, conversation: dict[str, str]) -> None:
    limit = frame_limit(svc.settings.max_message_chars)
    while True:
        try:
            frame = ChatFrame.model_validate_json(await receive_text(ws, limit))
        except (BinaryFrame, FrameTooLarge) as exc:
            await _error(ws, exc.code, str(exc))
            continue
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
            try:
                await ratings.rate(svc.store, cid, frame.score, frame.comment or "")
            except ratings.AlreadyRated as exc:  # one rating per conversation: the first stands
                await _error(ws, "already_rated", str(exc), retryable=False)
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
        await ws.app.state.limits.message(cid)
        # Replies reach the client through the stream; the response itself is not needed here.
        await eng.handle(web_message(ws, conversation, frame.text, frame.client_msg_id))
    except GONE:
        raise
    except Exception as exc:
        status, _, retryable = classify(exc)
        if status >= 500 and status != 503:
            logger.exception("message %s in %s failed", frame.client_msg_id, cid)
        extra = {"retry_after": exc.retry_after} if isinstance(exc, RateLimited) else {}
        await _error(
            ws,
            ERROR_CODES.get(status, "failed"),
            describe(exc),
            client_msg_id=frame.client_msg_id,
            retryable=retryable,
            **extra,
        )
