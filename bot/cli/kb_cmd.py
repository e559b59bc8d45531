"""``triage kb index | search | eval``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.console import console, friendly_errors, progress_status, settings
from bot.errors import ConfigError
from bot.kb.config import KBConfig
from bot.kb.index import KBIndex, load_or_build
from bot.kb.search import SearchResult, search_index
from bot.nlu.training_data import load_training_data

app = typer.Typer(no_args_is_help=True)


def _index(force: bool = False, out: Path | None = None) -> tuple[KBIndex, bool]:
    """Load the KB index, building it first when articles, synonyms or config changed."""
    s = settings()
    data = load_training_data(s.data_dir)
    config = KBConfig.from_file(s.kb_dir / "config.yml")
    with progress_status("knowledge base") as progress:
        return load_or_build(
            s.kb_dir / "articles",
            out or s.kb_index_path,
            config,
            data.synonyms,
            data.intents,
            force,
            progress,
        )


@app.command()
def index(
    out: Annotated[Path | None, typer.Option(help="Index folder (default models/kb).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even when nothing changed.")] = False,
) -> None:
    """Validate the articles and build the search index (skipped when nothing changed)."""
    with friendly_errors():
        built, rebuilt = _index(force, out)
    where = out or settings().kb_index_path
    if rebuilt:
        console.print(
            f"indexed {len(built.articles)} articles in {built.meta['build_seconds']:.2f} s → {where}"
        )
    else:
        console.print(f"index in {where} is up to date ({len(built.articles)} articles)")


def _print(result: SearchResult) -> None:
    from rich.markup import escape

    if not result.hits:
        console.print(f"[yellow]no articles match[/yellow] {escape(result.query)!r}")
        return
    for i, hit in enumerate(result.hits, 1):
        a = hit.article
        note = " [dim](other language)[/dim]" if hit.other_language else ""
        console.print(
            f"[bold]{i}. {escape(a.title)}[/bold]  [cyan]{a.id}[/cyan] {a.lang}{note}  "
            f"score {hit.score:.2f}  intents {', '.join(a.intents)}"
        )
        snippet = escape(hit.snippet)
        parts = snippet.split("**")
        console.print("   " + "".join(f"[reverse]{p}[/reverse]" if i % 2 else p for i, p in enumerate(parts)))


@app.command()
def search(
    query: Annotated[list[str] | None, typer.Argument(help="Search words.")] = None,
    lang: Annotated[
        str | None, typer.Option(help="Prefer articles in zh or en (default: the query's).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, max=100, help="How many results.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list of results.")] = False,
    input: Annotated[
        Path | None,
        typer.Option("--input", help="One query per line ('-' for stdin); prints one JSON list per line."),
    ] = None,
) -> None:
    """Search the knowledge base (free text; no intent needed)."""
    with friendly_errors():
        if lang is not None and lang not in ("zh", "en"):
            raise ConfigError("--lang must be zh or en")
        built, _ = _index()
        if input is not None:
            raw = sys.stdin.buffer.read() if str(input) == "-" else input.read_bytes()
            for line in raw.decode("utf-8", errors="replace").splitlines():
                hits = search_index(built, line, lang, top).hits
                sys.stdout.write(json.dumps([h.to_dict() for h in hits], ensure_ascii=False) + "\n")
            return
        text = " ".join(query or [])
        if not text.strip():
            raise ConfigError('give a query, e.g. triage kb search "查验失败 提示不一致"')
        result = search_index(built, text, lang, top)
    if as_json:
        sys.stdout.write(json.dumps([h.to_dict() for h in result.hits], ensure_ascii=False, indent=2) + "\n")
    else:
        _print(result)


@app.command("eval")
def eval_command(
    queries: Annotated[
        Path | None, typer.Option(help="Evaluation queries (default kb_index/eval/queries.yml).")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    use_intent: Annotated[bool, typer.Option(help="Boost by the NLU's intent, as the bot does.")] = True,
) -> None:
    """Recall@1/@3, MRR and no-answer precision/recall per language."""
    from bot.kb.evaluation import evaluate, load_queries
    from bot.nlu.pipeline import NLUPipeline

    s = settings()
    with friendly_errors():
        built, _ = _index()
        query_list = load_queries(queries or s.kb_dir / "eval" / "queries.yml", built)
        intent_of = None
        if use_intent:
            with progress_status("NLU model") as progress:
                nlu, _ = NLUPipeline.load_or_train(
                    s.data_dir, s.nlu_model_path, progress, timezone=s.timezone
                )
            intent_of = lambda text: str(nlu.parse(text)["intent"]["name"])  # noqa: E731
        result = evaluate(built, query_list, intent_of, built.config.answer)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text + "\n", encoding="utf-8")
    from rich.table import Table

    table = Table(
        title=f"KB evaluation (threshold {result['threshold']}, best here {result['best_threshold_on_this_set']})"
    )
    keys = ("recall_at_1", "recall_at_3", "mrr", "no_answer_precision", "no_answer_recall", "search_ms_p99")
    table.add_column("lang")
    for key in keys:
        table.add_column(key)
    for lang, row in result["by_language"].items():
        table.add_row(lang, *(str(row[k]) for k in keys))
    console.print(table)
    if not report:
        sys.stdout.write(text + "\n")
