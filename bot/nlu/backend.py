"""The NLU backend interface: what the engine needs from whatever understands a message.

The native pipeline (with or without the sentence encoder, as ``nlu_data/config.yml`` says) and a real Rasa
server behind its HTTP API are interchangeable behind it. A backend returns the frozen
:class:`~bot.contracts.parse.Parse`; the engine never indexes keys a backend may not return.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from bot.contracts.parse import Parse
from bot.cpu import CpuPool, run_cpu
from bot.metrics import Metrics
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings


@dataclass(frozen=True)
class ParseContext:
    """What a backend may use besides the text: the script the conversation was in, and the question the
    bot is waiting on (a yes/no question makes "好的" an answer, not a greeting)."""

    previous_script: str = ""
    pending: dict[str, Any] | None = None
    today: dt.date | None = None


@runtime_checkable
class NLUBackend(Protocol):
    name: str

    @property
    def intents(self) -> Sequence[str]:
        """The intents this backend can return (``nlu_fallback`` and ``out_of_scope`` aside)."""
        ...

    async def parse(self, text: str, context: ParseContext | None = None) -> Parse:
        """Understand ``text``, off the event loop."""
        ...

    def parse_now(self, text: str, context: ParseContext | None = None) -> Parse:
        """The same, in the calling thread (for callers already in a worker thread)."""
        ...


class NativeBackend:
    """Our own pipeline (bot/nlu/pipeline.py), run in the app's CPU pool."""

    name = "native"

    def __init__(self, pipeline: NLUPipeline, cpu: CpuPool | None = None) -> None:
        self.pipeline, self.cpu = pipeline, cpu

    @property
    def intents(self) -> Sequence[str]:
        return self.pipeline.intents

    async def parse(self, text: str, context: ParseContext | None = None) -> Parse:
        return await run_cpu(self.cpu, self.parse_now, text, context)

    def parse_now(self, text: str, context: ParseContext | None = None) -> Parse:
        return self.pipeline.parse_typed(text, context.today if context else None)


def build_backend(
    settings: Settings, pipeline: NLUPipeline, cpu: CpuPool | None, metrics: Metrics
) -> NLUBackend:
    """The backend ``TRIAGE_NLU_BACKEND`` names; ``pipeline`` is the native one (Rasa's fallback)."""
    if settings.nlu_backend == "rasa":
        from bot.nlu.rasa_backend import RasaBackend  # httpx client state only when it is used

        return RasaBackend.from_settings(settings, pipeline, metrics, cpu)
    return NativeBackend(pipeline, cpu)
