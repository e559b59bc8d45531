"""Shared pieces of the command line (the bot's and the desk's): the rich console, progress display, error exits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from bot.errors import TriageError
from bot.settings import Settings

console = Console(stderr=True)


def settings() -> Settings:
    return Settings()


@contextmanager
def progress_status(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner whose text follows the stages a long task reports."""
    with console.status(title) as status:

        def update(stage: str) -> None:
            status.update(f"{title} — {stage}")

        yield update


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn project errors into one red line and exit code 1 instead of a traceback."""
    try:
        yield
    except TriageError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
