"""The one message type that flows through everything: channel in, parse, decide, reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    channel: str  # web | rest | wecom | dingtalk
    sender_id: str
    conversation_id: str
    text: str
    message_id: str  # the client's id; a retry with the same id is stored and answered once
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Button:
    title: str
    payload: str

    def to_dict(self) -> dict[str, str]:
        return {"title": self.title, "payload": self.payload}


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()
    link: str | None = None
    article_id: str | None = None
