"""The channel interface: decode a platform's inbound payload into the one :class:`~bot.message.Message`,
and deliver outbound transcript events in the platform's form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from bot.errors import ConfigError, NotFound, TriageError
from bot.message import Message


class Channel(Protocol):
    """An adapter between one messaging platform and the engine.

    ``push``: the outbox delivers this channel's transcript events (:mod:`bot.outbox`); a pull channel (the
    web widget) reads the transcript itself. ``inline``: the reply to an inbound request already carries the
    bot's replies (Rasa REST answers synchronously), so the outbox pushes only what that response did not.
    """

    name: str
    push: bool
    inline: bool

    def receive(self, payload: Mapping[str, Any]) -> Message:
        """Verify and decode a platform payload; raises :class:`~bot.errors.InputError` on a bad one."""
        ...

    async def deliver(self, conversation: Mapping[str, str], event: Mapping[str, Any]) -> None:
        """Send one outbound event (see :func:`bot.channels.outbound.render`) to the conversation's user;
        raises :class:`DeliveryError` when the platform did not take it."""
        ...

    async def aclose(self) -> None:
        """Release the adapter's HTTP client."""
        ...


class DeliveryError(TriageError):
    """The platform refused or did not answer. ``retryable`` is False for a refusal that a retry cannot fix."""

    retryable = True

    def __init__(self, channel: str, reason: str, retryable: bool = True) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel, self.reason, self.retryable = channel, reason, retryable


class UnknownChannel(ConfigError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"no channel {name!r}; known channels: {', '.join(sorted(known))}")
        self.name = name


def numbered_text(text: str, buttons: Sequence[Mapping[str, Any]]) -> str:
    """Buttons for platforms without them: a numbered list under the text (the user answers with the text)."""
    lines = [text] if text else []
    lines += [f"{i}. {button['title']}" for i, button in enumerate(buttons, 1)]
    return "\n".join(lines)


def message_key(conversation_id: str, seq: int) -> str:
    """The stable idempotency key of one outbound event: the same on every retry and every process."""
    return f"{conversation_id}:{seq}"


class ChannelDisabled(NotFound):
    """A channel whose endpoint is off in this deployment (a setting turns it on)."""

    def __init__(self, name: str, how: str) -> None:
        super().__init__(f"the {name} channel is not enabled; {how}")
        self.name = name
