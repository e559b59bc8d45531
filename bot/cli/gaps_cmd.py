"""``triage gaps``: the knowledge-gap log clustered, with suggested training examples and article stubs."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from bot.analytics.gaps import DISTANCE, Cluster, Gap, Nearest, article_candidates, cluster, read_gaps
from bot.analytics.suggestions import intent_for, write_suggestions
from bot.cli.console import console, friendly_errors, progress_status, settings
from bot.errors import InputError
from bot.kb.config import KBConfig
from bot.kb.index import load_or_build
from bot.kb.search import search_index
from bot.nlu.training_data import load_training_data
from bot.settings import Settings
from bot.store.connection import connect_to
from bot.store.keys import Keys

_SPAN = re.compile(r"^(?P<n>[1-9][0-9]{0,3})(?P<unit>[hdw])$")
_UNIT_S = {"h": 3600, "d": 86400, "w": 7 * 86400}


def span_seconds(span: str) -> int:
    """``7d``, ``24h``, ``2w`` in seconds."""
    match = _SPAN.match(span.strip())
    if not match:
        raise InputError(f"--since {span!r}: write a number and h, d or w, e.g. 7d")
    return int(match["n"]) * _UNIT_S[match["unit"]]


async def _read(s: Settings, since_ms: int) -> list[Gap]:
    handle = connect_to(s, max_connections=4)
    try:
        return await read_gaps(handle.client, Keys(s.redis_prefix), since_ms)
    finally:
        await handle.close()


def gaps(
    since: Annotated[str, typer.Option(help="How far back: 7d, 24h, 2w.")] = "7d",
    out: Annotated[
        Path | None, typer.Option(help="Write nlu/gaps.yml and articles/<lang>/*.md stubs here.")
    ] = None,
    distance: Annotated[
        float, typer.Option(min=0.05, max=1.0, help="Cosine distance under which texts share a cluster.")
    ] = DISTANCE,
    min_size: Annotated[int, typer.Option(min=1, help="Smallest cluster to suggest examples for.")] = 2,
    top: Annotated[int, typer.Option(min=1, help="Clusters to show.")] = 20,
) -> None:
    """Cluster the fallbacks, "not helpful" answers and handoffs the KB did not answer; show each cluster
    with the nearest intent and article, and write suggestions for a support engineer to accept."""
    with friendly_errors():
        s = settings()
        since_ms = int((time.time() - span_seconds(since)) * 1000)
        with progress_status("knowledge gaps") as progress:
            progress("reading the gap log")
            found = asyncio.run(_read(s, since_ms))
            progress("loading nlu_data and the knowledge base")
            data = load_training_data(s.data_dir)
            index, _ = load_or_build(
                s.kb_dir / "articles",
                s.kb_index_path,
                KBConfig.from_file(s.kb_dir / "config.yml"),
                data.synonyms,
                data.intents,
            )

            def nearest_article(text: str, lang: str) -> Nearest | None:
                hits = search_index(index, text, lang, 1).hits
                return (
                    Nearest(hits[0].article.id, hits[0].confidence, hits[0].article.title) if hits else None
                )

            progress(f"clustering {len(found)} entries")
            clusters = cluster(found, [(e.text, e.intent) for e in data.examples], nearest_article, distance)
        candidates = article_candidates(found)
        console.print(
            f"{len(found)} gap entries since {since} ago: {len(clusters)} clusters, "
            f"{len(candidates)} replies marked for an article"
        )
        for number, c in enumerate(clusters[:top], 1):
            _show(number, c, intent_for(c, number) if c.size >= min_size else "")
        for gap in candidates:
            console.print(
                f"[bold]article candidate[/bold] ({gap.language}, {gap.conversation_id}): {gap.text}"
            )
            console.print(f"   [dim]{gap.reply[:200]}[/dim]", highlight=False)
        if out is not None:
            today = dt.datetime.now(ZoneInfo(s.timezone)).date()
            written = write_suggestions(clusters, candidates, out, today, min_size)
            if written.nlu_file:
                console.print(f"suggested examples → {written.nlu_file}")
            console.print(f"{len(written.articles)} article stubs → {out / 'articles'}")


def _show(number: int, c: Cluster, suggested: str) -> None:
    from rich.markup import escape

    kinds = ", ".join(f"{k} {n}" for k, n in sorted(c.kinds.items()))
    intent = f"{c.intent.name} ({c.intent.score:.2f})" if c.intent else "-"
    article = f"{c.article.name} {escape(c.article.title)} ({c.article.score:.2f})" if c.article else "-"
    console.print(f"[bold]#{number}[/bold] size {c.size} · {c.language} · {kinds}")
    console.print(f"   nearest intent {intent} · nearest article {article}", highlight=False)
    if suggested:
        console.print(f"   suggested intent [cyan]{suggested}[/cyan]")
    for example in c.examples[:3]:
        console.print(f"   - {escape(example)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(gaps)
