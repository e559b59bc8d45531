"""The ASGI app for uvicorn (``triagebot.main:app``), built from the environment's settings."""

from triagebot.app import create_app

app = create_app()
