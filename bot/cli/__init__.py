"""The bot's commands of the ``triage`` command line (Typer); :mod:`triagebot.cli` adds the desk's
(``agents``) and ``serve`` and is the entry point."""

from __future__ import annotations

import typer

from bot.cli import data_cmd, gaps_cmd, kb_cmd, nlu_cmd, rasa_cmd

app = typer.Typer(
    help="triagebot: bilingual support chatbot — NLU, knowledge base and handoff.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
nlu_cmd.register(app)
gaps_cmd.register(app)
app.add_typer(data_cmd.app, name="data", help="Convert datasets into Rasa YAML.")
app.add_typer(kb_cmd.app, name="kb", help="Knowledge base: index, search, evaluate.")
app.add_typer(rasa_cmd.app, name="rasa", help="A real Rasa server from nlu_data/ (docs/rasa.md).")
