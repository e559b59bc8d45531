"""What the conversation engine works with: the stores, the models, the CPU pool and the desk's hooks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.cpu import CpuPool
from bot.kb.search import KnowledgeBase
from bot.metrics import Metrics
from bot.nlu.backend import NLUBackend
from bot.settings import Settings
from bot.store.conversations import ConversationStore
from bot.store.handoffs import HandoffStore


@dataclass
class DeskHooks:
    """What the engine needs from the human desk (the handoff gateway supplies it; the engine does not
    import the gateway)."""

    on_duty: Callable[[str], Awaitable[bool]]  # is an agent of this skill group on duty now?
    next_on_duty: Callable[[str], Awaitable[dt.datetime | None]]  # when does the next shift start?
    on_queued: Callable[[str], Awaitable[None]]  # wake the dispatcher, refresh consoles
    on_ticket: Callable[[dict[str, Any]], Awaitable[None]]  # nobody on duty: page on-call


async def _never_on_duty(group: str) -> bool:
    return False


async def _no_schedule(group: str) -> dt.datetime | None:
    return None


async def _nothing(*args: Any) -> None:
    return None


def no_desk() -> DeskHooks:
    """The bot alone: nobody is ever on duty, so handoffs open tickets."""
    return DeskHooks(_never_on_duty, _no_schedule, _nothing, _nothing)


@dataclass
class Services:
    settings: Settings
    nlu: NLUBackend  # the native pipeline, with or without the encoder, or a Rasa server
    kb: KnowledgeBase
    store: ConversationStore
    handoffs: HandoffStore
    metrics: Metrics
    cpu: CpuPool | None = None
    desk: DeskHooks = field(default_factory=no_desk)
