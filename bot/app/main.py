"""The ASGI app for uvicorn (``bot.app.main:app``), built from the environment's settings."""

from bot.app import create_app

app = create_app()
