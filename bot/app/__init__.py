"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import handoff_gateway
from bot.app import errors
from bot.app.routes_chat import router as chat_router
from bot.app.routes_ops import router as ops_router
from bot.app.routes_rasa import router as rasa_router
from bot.app.ws_chat import router as ws_router
from bot.engine import Engine, Services
from bot.kb.search import KnowledgeBase
from bot.metrics import Metrics
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.training_data import load_training_data
from bot.settings import Settings
from bot.store.connection import connect
from bot.store.conversations import ConversationStore
from bot.store.queue import HandoffQueue
from bot.store.tickets import TicketStore
from handoff_gateway.api import router as agents_router
from handoff_gateway.gateway import Gateway
from handoff_gateway.ws_agent import router as ws_agent_router

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "static"
CONSOLE_STATIC = Path(handoff_gateway.__file__).resolve().parent / "static"


def load_understanding(settings: Settings) -> tuple[NLUPipeline, KnowledgeBase]:
    """The NLU model (trained first if nlu_data changed) and the knowledge base (indexed if needed)."""
    nlu, _ = NLUPipeline.load_or_train(settings.data_dir, settings.nlu_model_path, timezone=settings.timezone)
    data = load_training_data(settings.data_dir)
    kb = KnowledgeBase(
        settings.kb_dir / "articles",
        settings.kb_index_path,
        settings.kb_dir / "config.yml",
        data.synonyms,
        data.intents,
    )
    return nlu, kb


def create_app(
    settings: Settings | None = None, nlu: NLUPipeline | None = None, kb: KnowledgeBase | None = None
) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded_nlu, loaded_kb = (
            (nlu, kb) if nlu and kb else await asyncio.to_thread(load_understanding, settings)
        )
        handle = await asyncio.to_thread(
            connect, settings.redis_url, settings.var_dir, settings.redis_max_connections
        )
        retention = settings.transcript_retention_days * 86400
        services = Services(
            settings,
            loaded_nlu,
            loaded_kb,
            ConversationStore(handle.client, settings.redis_prefix, retention),
            TicketStore(handle.client, settings.redis_prefix, settings.timezone),
            HandoffQueue(handle.client, settings.redis_prefix),
            Metrics(),
        )
        gateway = Gateway(settings, services.store, services.queue, services.tickets)
        services.duty, services.on_queued = gateway.dispatcher.anyone_on_duty, gateway.on_queued
        services.on_ticket = gateway.on_ticket
        app.state.settings = settings
        app.state.services = services
        app.state.engine = Engine(services)
        app.state.gateway = gateway
        app.state.redis = handle
        gateway.start()
        logger.info(
            "triagebot ready: Redis %s, %d intents, %d articles",
            handle.description,
            len(loaded_nlu.intents),
            len(loaded_kb.index.articles),
        )
        try:
            yield
        finally:
            await gateway.stop()
            await handle.close()

    app = FastAPI(
        title="triagebot",
        version="0.1.0",
        lifespan=lifespan,
        description="Bilingual support chatbot: NLU, knowledge base, human handoff. See docs/api.md.",
    )
    errors.install(app)
    app.include_router(chat_router)
    app.include_router(ws_router)
    app.include_router(rasa_router)
    app.include_router(ops_router)
    app.include_router(agents_router)
    app.include_router(ws_agent_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/console-static", StaticFiles(directory=CONSOLE_STATIC), name="console-static")
    return app
