"""Websocket frames in and out, for ``/ws/chat`` and ``/ws/agent`` alike.

Inbound, a frame is JSON text of a bounded size: a binary frame or an oversized one is an :class:`InputError`
the connection answers with an ``error`` frame (before the hello: an error frame, then a close — 1003 for
binary, 1009 for too large). JSON is decoded by pydantic (``model_validate_json``), whose parser refuses lone
surrogates and nesting deeper than a few hundred levels instead of recursing into a ``RecursionError``.

Outbound, the client may be gone at any moment: a send to a closed socket is the end of the connection, not
an error — :data:`GONE` names every way that surfaces, so that it is logged as one line, not a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected
from uvicorn.protocols.utils import ClientDisconnected
from websockets.exceptions import ConnectionClosed

from bot.errors import InputError, MessageTooLarge

logger = logging.getLogger(__name__)

# The client went away: Starlette's disconnect (received, or a send that hit a closed socket), a second
# send after that, and what the server's websocket layer raises beneath them.
GONE: tuple[type[BaseException], ...] = (
    WebSocketDisconnect,
    WebSocketDisconnected,
    ClientDisconnected,
    ConnectionClosed,
)
HELLO_CHARS = 16 * 1024  # a hello carries ids and a token
UNSUPPORTED_DATA = 1003  # RFC 6455: a binary frame where text is expected
TOO_BIG = 1009


class BinaryFrame(InputError):
    code = "binary_frame"

    def __init__(self) -> None:
        super().__init__("binary frames are not accepted: send JSON as a text frame")


class FrameTooLarge(MessageTooLarge):
    code = "too_large"

    def __init__(self, size: int, limit: int) -> None:
        InputError.__init__(self, f"the frame is {size:,} characters; the limit is {limit:,}")
        self.size, self.limit = size, limit


def frame_limit(max_message_chars: int) -> int:
    """Room for a message of the configured size written with JSON's six-character escapes, and its fields."""
    return 6 * max_message_chars + 4096


async def receive_text(ws: WebSocket, limit: int) -> str:
    """The next text frame; :class:`BinaryFrame` or :class:`FrameTooLarge` for one that is not acceptable,
    ``WebSocketDisconnect`` when the client left."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if text is None:
        raise BinaryFrame()
    if len(text) > limit:
        raise FrameTooLarge(len(text), limit)
    return str(text)


async def send_json(ws: WebSocket, frame: dict[str, Any]) -> None:
    await ws.send_text(json.dumps(frame, ensure_ascii=False))


async def refuse(ws: WebSocket, code: str, message: str, close: int, **extra: Any) -> None:
    """An ``error`` frame, then close with ``close``; the client may have left already."""
    with contextlib.suppress(*GONE):
        await send_json(ws, {"type": "error", "code": code, "message": message, **extra})
        await ws.close(close)


def refusal(exc: BinaryFrame | FrameTooLarge) -> tuple[str, int]:
    """The error code and close code for a frame refused before the hello."""
    return exc.code, UNSUPPORTED_DATA if isinstance(exc, BinaryFrame) else TOO_BIG


def gone(where: str, exc: BaseException) -> None:
    """The one line a connection ends with when its client left mid-way."""
    logger.info("%s: the client left (%s)", where, type(exc).__name__)
