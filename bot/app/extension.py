"""How a package adds to the bot's app without the bot importing it (the handoff gateway is one)."""

from __future__ import annotations

from typing import Protocol

from fastapi import FastAPI

from bot.engine import Services


class AppExtension(Protocol):
    def install(self, app: FastAPI) -> None:
        """Add routes and static mounts (when the app is built)."""

    async def start(self, app: FastAPI, services: Services) -> None:
        """Start with the app (after Redis and the engine exist); may set ``services.desk``."""

    async def stop(self) -> None:
        """Stop with the app (in reverse order of starting)."""
