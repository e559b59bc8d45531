"""Rasa's REST and callback channels, so existing Rasa clients work unchanged.

* REST (``POST /webhooks/rest/webhook``): the bot's replies come back in the HTTP response. With a callback
  URL configured (``TRIAGE_RASA_CALLBACK_URL``) the conversation is also a push conversation: whatever the
  user did not get in a response — agents' messages, queue updates, "agent joined", the CSAT request — is
  POSTed to that URL.
* Callback (``POST /webhooks/callback/webhook``): the request is answered ``success`` and every reply is
  POSTed to the callback URL.

Each POST is a Rasa bot message ``{"recipient_id", "text", "buttons"?, "metadata": {"message_id"}}`` with
the same key in an ``Idempotency-Key`` header: the outbox delivers at least once, so receivers deduplicate
on it.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from bot.channels.base import DeliveryError, message_key
from bot.channels.outbound import render
from bot.errors import ConfigError, InputError
from bot.message import Message
from bot.vocabulary import Channel as ChannelName

logger = logging.getLogger(__name__)
RETRYABLE_STATUS = frozenset({408, 425, 429})


def conversation_id(channel: str, sender: str) -> str:
    """Rasa names conversations by sender; hash it into our id space (one conversation per channel)."""
    return f"{channel}-" + hashlib.sha256(sender.encode()).hexdigest()[:24]


def bot_message(
    recipient_id: str, key: str, text: str, buttons: Any = (), role: str = "bot"
) -> dict[str, Any]:
    """A Rasa bot message as the callback URL receives it."""
    body: dict[str, Any] = {"recipient_id": recipient_id, "text": text}
    if buttons:
        body["buttons"] = [dict(b) for b in buttons]
    body["metadata"] = {"message_id": key, "role": role}
    return body


class RasaRestChannel:
    """``inline``: the HTTP response carries the bot's replies; it pushes only when a callback URL is set."""

    name: str = ChannelName.REST
    inline = True

    def __init__(self, callback_url: str | None = None, timeout: float = 10.0) -> None:
        self.callback_url = callback_url
        self.push = bool(callback_url)
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def conversation_id(self, sender: str) -> str:
        return conversation_id(self.name, sender)

    def receive(self, payload: Mapping[str, Any]) -> Message:
        """``{"sender", "message", "metadata"?}``; ``metadata.message_id`` makes a retry idempotent."""
        sender, text = payload.get("sender"), payload.get("message")
        if not isinstance(sender, str) or not sender or not isinstance(text, str):
            raise InputError("a Rasa message needs a 'sender' and a 'message' (strings)")
        metadata = payload.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise InputError("'metadata' must be an object")
        message_id = str(metadata.get("message_id") or uuid.uuid4())
        return Message(self.name, sender, self.conversation_id(sender), text, message_id, dict(metadata))

    async def deliver(self, conversation: Mapping[str, str], event: Mapping[str, Any]) -> None:
        out = render(event, conversation.get("script", ""))
        if out is None:
            return
        if not self.callback_url:
            raise ConfigError(f"the {self.name} channel pushes only with TRIAGE_RASA_CALLBACK_URL set")
        key = message_key(conversation.get("conversation_id", ""), out.seq)
        body = bot_message(conversation.get("user", ""), key, out.text, out.buttons, out.role)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        try:
            response = await self._client.post(self.callback_url, json=body, headers={"Idempotency-Key": key})
        except httpx.HTTPError as exc:
            raise DeliveryError(self.name, f"POST {self.callback_url} failed: {exc!r}") from exc
        if response.status_code >= 300:
            status = response.status_code
            raise DeliveryError(
                self.name,
                f"POST {self.callback_url} answered {status}: {response.text[:200]}",
                retryable=status >= 500 or status in RETRYABLE_STATUS,
            )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class RasaCallbackChannel(RasaRestChannel):
    """Rasa's callback channel: the request is answered ``success``; every reply goes to the callback URL."""

    name: str = ChannelName.CALLBACK
    inline = False
