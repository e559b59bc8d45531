"""The ``triage`` command: the bot's commands, the desk's ``agents`` and ``serve``."""

from __future__ import annotations

import logging

from bot.cli import app
from handoff_gateway.cli import app as agents_app
from triagebot.serve import serve

app.command()(serve)
app.add_typer(agents_app, name="agents", help="Agent and supervisor accounts.")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":  # python -m triagebot.cli (benchmarks run it so)
    main()
