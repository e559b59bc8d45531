"""The human desk as an extension of the bot's app: agent API and websocket, console, dispatcher, analytics."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from bot.analytics.rollup import Rollup
from bot.engine import Services
from handoff_gateway.analytics_api import router as analytics_router
from handoff_gateway.api import router as agents_router
from handoff_gateway.gateway import Gateway
from handoff_gateway.ws_agent import router as ws_agent_router

STATIC = Path(__file__).resolve().parent / "static"


async def console_page() -> HTMLResponse:
    return HTMLResponse((STATIC / "console.html").read_text(encoding="utf-8"))


class DeskExtension:
    """Builds the :class:`Gateway` on the app's services and hands the engine its desk hooks."""

    def __init__(self) -> None:
        self.gateway: Gateway | None = None
        self.rollup: Rollup | None = None

    def install(self, app: FastAPI) -> None:
        app.include_router(agents_router)
        app.include_router(ws_agent_router)
        app.include_router(analytics_router)
        app.add_api_route("/console", console_page, response_class=HTMLResponse, include_in_schema=False)
        app.mount("/console-static", StaticFiles(directory=STATIC), name="console-static")

    async def start(self, app: FastAPI, services: Services) -> None:
        self.gateway = Gateway(
            services.settings, services.store, services.handoffs, services.cpu, services.metrics
        )
        services.desk = self.gateway.hooks()
        app.state.gateway = self.gateway
        self.gateway.start()
        s = services.settings
        self.rollup = Rollup(
            services.store,
            s.timezone,
            s.analytics_retention_days,
            s.analytics_interval_seconds,
            getattr(app.state, "hub", None),
        )
        app.state.rollup = self.rollup
        self.rollup.start()

    async def stop(self) -> None:
        if self.rollup is not None:
            await self.rollup.stop()
        if self.gateway is not None:
            await self.gateway.stop()
