"""``create_app(settings)``: the whole product — the bot's app with the desk extension."""

from __future__ import annotations

from fastapi import FastAPI

from bot.app import build_app
from bot.kb.search import KnowledgeBase
from bot.nlu.backend import NLUBackend
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from handoff_gateway.extension import DeskExtension


def create_app(
    settings: Settings | None = None,
    nlu: NLUPipeline | NLUBackend | None = None,
    kb: KnowledgeBase | None = None,
) -> FastAPI:
    return build_app(settings, nlu, kb, extensions=[DeskExtension()])
