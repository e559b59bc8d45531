"""``triage eval --dialogue``: the labelled conversations of nlu_data/eval/ through the real engine."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.console import console, friendly_errors, progress_status, settings
from bot.dialogue.report import score_set
from bot.dialogue.runner import Models, eval_services, load_models, run_sets
from bot.dialogue.sets import DECISIONS, EvalSet, load_set
from bot.settings import Settings

DEFAULT_SETS = ("dialogue.yml", "heldout.yml")  # under the data dir's eval/
DEFAULT_REPORT = Path("benchmarks/results/dialogue_eval.json")
MISSES_SHOWN = 30


def dialogue_eval(sets: list[Path] | None, report: Path | None) -> dict[str, Any]:
    """Load the sets and the trained model, run every conversation, print tables, write the JSON report."""
    s = settings()
    with friendly_errors():
        with progress_status("loading the NLU model and the knowledge base"):
            models = load_models(s)
        paths = sets or [s.data_dir / "eval" / name for name in DEFAULT_SETS]
        loaded = [load_set(path, models.intents) for path in paths]
        result = run_report(s, models, loaded)
    out = report or DEFAULT_REPORT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    show(result)
    console.print(f"report → {out}")
    return result


def run_report(s: Settings, models: Models, sets: list[EvalSet]) -> dict[str, Any]:
    """Run ``sets`` with a progress bar; the JSON-ready report."""
    started = time.perf_counter()
    total = sum(len(e.conversations) for e in sets)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("conversations", total=total)

        def advance(name: str) -> None:
            progress.update(task, advance=1, description=name[:40])

        async def go() -> dict[str, Any]:
            async with eval_services(s, models.nlu, models.kb) as services:
                return await run_sets(services, sets, advance)

        results = asyncio.run(go())
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "model": models.model_info,
        "sets": {e.name: {"file": str(e.path), **score_set(results.get(e.name, []))} for e in sets},
    }


def show(result: dict[str, Any]) -> None:
    model = result["model"]
    if model.get("up_to_date") is False:
        console.print(
            "[yellow]warning:[/yellow] the model is older than nlu_data/ — run `triage train` for current figures"
        )
    for name, r in result["sets"].items():
        console.print(_headline(name, r))
        console.print(_confusion(name, r))
        if r["misses"]:
            console.print(_misses(name, r["misses"]))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _headline(name: str, r: dict[str, Any]) -> Table:
    table = Table(
        title=f"dialogue decisions — {name} ({r['conversations']} conversations, {r['turns']} turns)"
    )
    columns = ["decisions", "whole conversations", *r["by_script"], "intent", "severity"]
    for column in columns:
        table.add_column(column, justify="right")
    scripts = [f"{_pct(v['accuracy'])} ({v['turns']})" for v in r["by_script"].values()]
    table.add_row(
        _pct(r["accuracy"]),
        _pct(r["conversation_accuracy"]),
        *scripts,
        f"{_pct(r['intent']['accuracy'])} ({r['intent']['turns']})",
        f"{_pct(r['severity']['accuracy'])} ({r['severity']['turns']})",
    )
    return table


def _confusion(name: str, r: dict[str, Any]) -> Table:
    table = Table(title=f"{name}: expected (rows) × what the bot did (columns)")
    table.add_column("expected")
    for decision in DECISIONS:
        table.add_column(decision, justify="right")
    table.add_column("recall", justify="right")
    for expected, row in r["confusion"].items():
        cells = [
            f"[bold]{row.get(d, 0)}[/bold]" if d == expected else str(row.get(d, 0) or "") for d in DECISIONS
        ]
        table.add_row(expected, *cells, _pct(r["by_expected"][expected]["recall"]))
    return table


def _misses(name: str, misses: list[dict[str, Any]]) -> Table:
    shown = misses[:MISSES_SHOWN]
    more = f", first {MISSES_SHOWN} shown; all in the JSON report" if len(misses) > MISSES_SHOWN else ""
    table = Table(title=f"{name}: {len(misses)} misses{more}", show_lines=False)
    for column in ("id", "text", "expected", "got", "engine"):
        table.add_column(column, overflow="fold")
    for m in shown:
        expected = m["expected"] + (f" / {'|'.join(m['expected_intent'])}" if "intent" in m["wrong"] else "")
        got = m["observed"] + (f" / {m['observed_intent']}" if "intent" in m["wrong"] else "")
        if "severity" in m["wrong"]:
            expected += f" / {m['expected_severity']}"
            got += f" / {m['observed_severity']}"
        table.add_row(f"{m['id']}#{m['turn']}", m["text"][:60], expected, got, m["engine"])
    return table
