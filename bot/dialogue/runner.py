"""Run labelled conversations through the real engine (real parse, policy, KB and Redis store) and record
what the bot did with every message.

Each run writes under a key prefix of its own and deletes every key under it afterwards, so it can share a
Redis with a running server."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot.dialogue.outcome import Outcome, classify
from bot.dialogue.sets import Conversation, EvalSet, Turn
from bot.engine import Engine
from bot.errors import ConfigError, Unavailable
from bot.kb.search import KnowledgeBase
from bot.message import Message
from bot.metrics import Metrics
from bot.nlu.backend import NativeBackend, NLUBackend
from bot.nlu.config import CONFIG_FILE, PipelineConfig, fingerprint
from bot.nlu.pipeline import NLUPipeline, stored_fingerprint
from bot.nlu.training_data import load_training_data
from bot.services import Services
from bot.settings import Settings
from bot.store.connection import connect
from bot.store.conversations import ConversationStore
from bot.store.handoffs import HandoffStore

logger = logging.getLogger(__name__)
EXTRA_INTENTS = ("out_of_scope", "nlu_fallback")  # labels a parse may carry besides the trained intents


@dataclass(frozen=True)
class TurnResult:
    conversation: Conversation
    index: int  # the turn's position in its conversation, from 0
    turn: Turn
    outcome: Outcome

    @property
    def decision_ok(self) -> bool:
        return self.outcome.decision in self.turn.accepted

    @property
    def expected(self) -> str:
        """The decision wanted: the one the bot took where it was one of those accepted."""
        return self.outcome.decision if self.decision_ok else self.turn.expect

    @property
    def intent_ok(self) -> bool | None:
        return self.outcome.intent in self.turn.intents if self.turn.intents else None

    @property
    def severity_ok(self) -> bool | None:
        return self.outcome.severity == self.turn.severity if self.turn.severity else None


@dataclass(frozen=True)
class Models:
    nlu: NLUPipeline
    kb: KnowledgeBase
    intents: tuple[str, ...]  # what labels may name
    model_info: dict[str, Any]


def load_models(settings: Settings) -> Models:
    """The trained NLU (not retrained here: a missing model says to run ``triage train``) and the KB."""
    data = load_training_data(settings.data_dir)
    nlu = NLUPipeline.load(settings.nlu_model_path, settings.data_dir, settings.timezone)
    kb = KnowledgeBase(
        settings.kb_dir / "articles",
        settings.kb_index_path,
        settings.kb_dir / "config.yml",
        data.synonyms,
        data.intents,
    )
    return Models(nlu, kb, (*data.intents, *EXTRA_INTENTS), model_info(nlu, settings))


def model_info(nlu: NLUPipeline, settings: Settings) -> dict[str, Any]:
    """Which model the figures belong to, and whether it is older than nlu_data/."""
    try:
        current = fingerprint([settings.data_dir], PipelineConfig.from_file(settings.data_dir / CONFIG_FILE))
        up_to_date: bool | None = stored_fingerprint(settings.nlu_model_path) == current
    except Exception as exc:  # a config the installed packages cannot resolve: report, don't stop
        logger.warning("could not fingerprint %s: %s", settings.data_dir, exc)
        up_to_date = None
    return {
        "path": str(settings.nlu_model_path),
        "pipeline": [name for name, _ in nlu.config.steps],
        "trained_at": nlu.meta.get("trained_at"),
        "fingerprint": nlu.meta.get("fingerprint"),
        "up_to_date": up_to_date,
    }


@asynccontextmanager
async def eval_services(
    settings: Settings, nlu: NLUPipeline | NLUBackend, kb: KnowledgeBase
) -> AsyncIterator[Services]:
    """Services on ``TRIAGE_REDIS_URL`` (else the embedded Redis in the var dir), under a fresh key prefix
    that is deleted afterwards; a bare pipeline is served as the native backend."""
    backend = NativeBackend(nlu) if isinstance(nlu, NLUPipeline) else nlu
    prefix = f"{settings.redis_prefix}eval-{uuid.uuid4().hex[:10]}:"
    scoped = settings.model_copy(update={"redis_prefix": prefix})
    handle = await asyncio.to_thread(connect, settings.redis_url, settings.var_dir, 8, "triage-eval")
    try:
        try:
            await handle.client.ping()
        except Exception as exc:
            raise Unavailable(
                f"cannot reach Redis ({handle.description or settings.redis_url}): {exc}; start it, or unset "
                "TRIAGE_REDIS_URL to use the embedded one"
            ) from exc
        retention = settings.transcript_retention_days * 86400
        yield Services(
            scoped,
            backend,
            kb,
            ConversationStore(handle.client, prefix, retention),
            HandoffStore(handle.client, prefix, retention, settings.timezone),
            Metrics(),
        )
    finally:
        try:
            await _delete_prefix(handle.client, prefix)
        finally:
            await handle.close()


async def _delete_prefix(client: Any, prefix: str) -> None:
    batch: list[str] = []
    async for key in client.scan_iter(match=prefix + "*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            await client.delete(*batch)
            batch.clear()
    if batch:
        await client.delete(*batch)


async def run_sets(
    services: Services,
    sets: Sequence[EvalSet],
    advance: Callable[[str], None] = lambda _: None,
) -> dict[str, list[TurnResult]]:
    """Every conversation of every set, each in a new conversation; ``advance`` is called after each."""
    engine = Engine(services)
    results: dict[str, list[TurnResult]] = {}
    for eval_set in sets:
        out = results.setdefault(eval_set.name, [])
        for conv in eval_set.conversations:
            out.extend(await run_conversation(engine, services, conv))
            advance(f"{eval_set.name}:{conv.id}")
    return results


async def run_conversation(engine: Engine, services: Services, conv: Conversation) -> list[TurnResult]:
    if not conv.turns:
        raise ConfigError(f"conversation {conv.id!r} has no turns")
    user = f"eval-{conv.id}"
    record = await services.store.create("web", user)
    cid = record["conversation_id"]
    out: list[TurnResult] = []
    for index, turn in enumerate(conv.turns):
        message = Message("web", user, cid, turn.say, f"eval-{index}")
        response = await engine.handle(message)
        event = await _user_event(services.store, cid, message.message_id)
        out.append(TurnResult(conv, index, turn, classify(response, event)))
    return out


async def _user_event(store: ConversationStore, cid: str, message_id: str) -> dict[str, Any] | None:
    """The user's message as the transcript holds it: the engine writes its decision and reasons there."""
    events = await store.events_after(cid, 0)
    return next(
        (e for e in reversed(events) if e.get("role") == "user" and e.get("client_msg_id") == message_id),
        None,
    )
