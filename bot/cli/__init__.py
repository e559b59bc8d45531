"""The ``triage`` command line (Typer)."""

from __future__ import annotations

import logging

import typer

from bot.cli import agents_cmd, data_cmd, kb_cmd, nlu_cmd, serve_cmd

app = typer.Typer(
    help="triagebot: bilingual support chatbot — NLU, knowledge base and handoff.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
nlu_cmd.register(app)
app.command()(serve_cmd.serve)
app.add_typer(data_cmd.app, name="data", help="Convert datasets into Rasa YAML.")
app.add_typer(kb_cmd.app, name="kb", help="Knowledge base: index, search, evaluate.")
app.add_typer(agents_cmd.app, name="agents", help="Agent and supervisor accounts.")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
