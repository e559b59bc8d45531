"""The bot's FastAPI application: ``build_app(settings, extensions=...)``.

The whole product (bot + human desk) is composed in :mod:`triagebot.app`; ``bot`` never imports the handoff
gateway — the desk plugs in as an :class:`~bot.app.extension.AppExtension` through ``Services.desk``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bot import logsafe
from bot.app import errors
from bot.app.bodies import BodyGuard
from bot.app.extension import AppExtension
from bot.app.platforms import PlatformIntake
from bot.app.routes_attachments import body_allowance as attachments_body
from bot.app.routes_attachments import router as attachments_router
from bot.app.routes_chat import router as chat_router
from bot.app.routes_ops import router as ops_router
from bot.app.routes_platforms import accept_dingtalk
from bot.app.routes_platforms import router as platforms_router
from bot.app.routes_rasa import router as rasa_router
from bot.app.routes_tickets import router as tickets_router
from bot.app.ws_chat import router as ws_router
from bot.channels.dingtalk import DingTalkChannel
from bot.channels.dingtalk_stream import DingTalkStream
from bot.channels.registry import build_channels
from bot.cpu import CpuPool
from bot.engine import Engine, Services
from bot.errors import InputError
from bot.gcpause import GcWatch, freeze_startup, tune
from bot.inbox import Inbox
from bot.kb.search import KnowledgeBase
from bot.metrics import Metrics
from bot.nlu.backend import NLUBackend, build_backend
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.training_data import load_training_data
from bot.outbox import Outbox
from bot.realtime.hub import EventHub
from bot.settings import Settings
from bot.store.attachments import AttachmentStore
from bot.store.connection import connect_to
from bot.store.conversations import ConversationStore
from bot.store.handoffs import HandoffStore
from bot.store.keys import Keys
from bot.store.rates import RateLimits
from bot.tasks import cancel_and_wait
from bot.vocabulary import Channel as ChannelName

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "static"


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


def dingtalk_streams(settings: Settings, state: Any) -> list[DingTalkStream]:
    """With ``TRIAGE_DINGTALK_STREAM``, one Stream-mode connection per DingTalk app: its robot messages are
    verified by the connection itself and stored like the HTTP callback's."""
    adapter = state.channels.get(ChannelName.DINGTALK)
    if not settings.dingtalk_stream or not isinstance(adapter, DingTalkChannel):
        return []
    streams = []
    for app in adapter.apps.values():

        async def submit(payload: dict[str, Any], name: str = app.name) -> bool:
            try:
                await accept_dingtalk(state, adapter, name, payload)
            except InputError as exc:  # a retry cannot fix it: refused, not "try again"
                logger.warning("dingtalk stream: refused a robot message: %s", exc)
                return False
            return True

        streams.append(
            DingTalkStream(app.app_key, app.app_secret.get_secret_value(), submit, api_base=app.api_base)
        )
    return streams


def build_app(
    settings: Settings | None = None,
    nlu: NLUPipeline | NLUBackend | None = None,
    kb: KnowledgeBase | None = None,
    extensions: Sequence[AppExtension] = (),
) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logsafe.install()  # platform credentials ride in query strings that httpx logs
        loaded_nlu, loaded_kb = (
            (nlu, kb) if nlu and kb else await asyncio.to_thread(load_understanding, settings)
        )
        handle = await asyncio.to_thread(connect_to, settings)
        retention = settings.transcript_retention_days * 86400
        cpu = CpuPool(settings.cpu_workers)
        metrics = Metrics()
        services = Services(
            settings,
            loaded_nlu
            if isinstance(loaded_nlu, NLUBackend)
            else build_backend(settings, loaded_nlu, cpu, metrics),
            loaded_kb,
            ConversationStore(handle.client, settings.redis_prefix, retention),
            HandoffStore(handle.client, settings.redis_prefix, retention, settings.timezone),
            metrics,
            cpu,
        )
        app.state.settings = settings
        app.state.services = services
        app.state.cpu = cpu
        app.state.engine = Engine(services)
        app.state.redis = handle
        app.state.limits = RateLimits(
            handle.client,
            Keys(settings.redis_prefix),
            settings.conversations_per_minute,
            settings.messages_per_minute,
        )
        app.state.hub = EventHub(services.store, handle.subscriber, settings.heartbeat_seconds)
        await app.state.hub.start()
        app.state.channels = build_channels(settings, handle.client)
        app.state.outbox = Outbox(services.store, app.state.channels, settings)
        app.state.outbox.start()
        app.state.inbox = None
        if {ChannelName.WECOM, ChannelName.DINGTALK} & app.state.channels.keys():
            intake = PlatformIntake(services, app.state.engine, app.state.outbox, app.state.channels)
            app.state.inbox = Inbox(
                handle.client,
                services.store.keys,
                intake.handle,
                lease_ms=int(settings.outbox_lease_seconds * 1000),
                give_up=intake.give_up,
            )
            await app.state.inbox.start()
        sweeper = asyncio.create_task(
            AttachmentStore.open(services.store, settings).sweep_forever(), name="attachment-sweep"
        )
        app.state.streams = dingtalk_streams(settings, app.state)
        for stream in app.state.streams:
            await stream.start()
        started: list[AppExtension] = []
        gc_watch = GcWatch(metrics.gc_pause)
        gc_watch.install()
        try:
            for extension in extensions:
                await extension.start(app, services)
                started.append(extension)
            frozen = freeze_startup() if settings.gc_freeze else 0
            tune(settings.gc_thresholds)
            logger.info(
                "triagebot ready: Redis %s, %d intents, %d articles; %d start-up objects frozen",
                handle.description,
                len(loaded_nlu.intents),
                len(loaded_kb.index.articles),
                frozen,
            )
            yield
        finally:
            gc_watch.remove()
            for extension in reversed(started):
                await extension.stop()
            for stream in app.state.streams:
                await stream.stop()
            if app.state.inbox is not None:
                await app.state.inbox.stop()
            await app.state.outbox.stop()
            await cancel_and_wait([sweeper])
            await app.state.hub.stop()
            await handle.close()
            if (close_nlu := getattr(services.nlu, "aclose", None)) is not None:
                await close_nlu()  # the rasa backend's HTTP connections
            cpu.shutdown()

    app = FastAPI(
        title="triagebot",
        version="0.1.0",
        lifespan=lifespan,
        description="Bilingual support chatbot: NLU, knowledge base, human handoff. See docs/api.md.",
    )
    errors.install(app)
    app.add_middleware(
        BodyGuard, limit=settings.max_body_bytes, allowances=[attachments_body(settings.max_attachment_bytes)]
    )
    app.include_router(chat_router)
    app.include_router(attachments_router)
    app.include_router(tickets_router)
    app.include_router(ws_router)
    app.include_router(rasa_router)
    app.include_router(platforms_router)
    app.include_router(ops_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for extension in extensions:
        extension.install(app)
    return app


def __getattr__(name: str) -> object:
    if name == "create_app":
        raise ImportError(
            "bot.app.create_app moved: the product (bot + desk) is composed in triagebot.app — "
            "use `from triagebot.app import create_app` (bot.app.build_app is the bot alone)"
        )
    raise AttributeError(name)
