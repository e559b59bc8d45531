"""The web widget: a pull channel. The widget reads the transcript itself (websocket, long-poll), so the
outbox never delivers to it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from bot.errors import InputError
from bot.message import Message
from bot.vocabulary import Channel as ChannelName


class WebChannel:
    name: str = ChannelName.WEB
    push = False
    inline = False

    def receive(self, payload: Mapping[str, Any]) -> Message:
        """A REST or websocket message body: ``conversation_id``, ``text``, ``client_msg_id``, ``user``."""
        text, cid = payload.get("text"), payload.get("conversation_id")
        if not isinstance(text, str) or not isinstance(cid, str) or not cid:
            raise InputError("a web message needs 'conversation_id' and 'text'")
        return Message(
            str(payload.get("channel") or self.name),
            str(payload.get("user") or ""),
            cid,
            text,
            str(payload.get("client_msg_id") or uuid.uuid4().hex),
            dict(payload.get("metadata") or {}),
        )

    async def deliver(self, conversation: Mapping[str, str], event: Mapping[str, Any]) -> None:
        """Nothing to do: the widget pulls."""

    async def aclose(self) -> None:
        """No client to close."""
