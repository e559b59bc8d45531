"""``triage train``, ``triage parse``, ``triage eval`` and ``triage shell``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.console import console, friendly_errors, progress_status, settings
from bot.errors import ConfigError
from bot.nlu.config import CONFIG_FILE, PipelineConfig
from bot.nlu.pipeline import NLUPipeline, cache_dir_for
from bot.nlu.registry import Context
from bot.nlu.training_data import load_training_data


def _load_pipeline(model: Path | None) -> NLUPipeline:
    s = settings()
    path = model or s.nlu_model_path
    with progress_status("loading the NLU model"):
        return NLUPipeline.load(path, timezone=s.timezone)


def train(
    data: Annotated[Path | None, typer.Option(help="Training data folder (with config.yml).")] = None,
    out: Annotated[Path | None, typer.Option(help="Model output folder.")] = None,
    force: Annotated[bool, typer.Option(help="Retrain even when data and config are unchanged.")] = False,
) -> None:
    """Train the NLU model (skipped when nlu_data/ and config.yml are unchanged)."""
    s = settings()
    data_dir, model_dir = data or s.data_dir, (out or s.model_dir) / "nlu"
    with friendly_errors(), progress_status("training") as progress:
        pipeline, trained = NLUPipeline.load_or_train(data_dir, model_dir, progress, force, s.timezone)
    if trained:
        console.print(
            f"trained {len(pipeline.intents)} intents on {pipeline.meta['examples']:,} examples "
            f"in {pipeline.meta['train_seconds']:.1f} s → {model_dir}"
        )
    else:
        console.print(
            f"model in {model_dir} is up to date (data and config unchanged); use --force to retrain"
        )


def parse(
    text: Annotated[list[str] | None, typer.Argument(help="Messages to parse.")] = None,
    input: Annotated[
        Path | None, typer.Option("--input", help="File with one message per line ('-' for stdin).")
    ] = None,
    model: Annotated[Path | None, typer.Option(help="Model folder (default models/nlu).")] = None,
) -> None:
    """Print one JSON parse per message (Rasa's shape plus language, severity and sentiment)."""
    with friendly_errors():
        pipeline = _load_pipeline(model)
        lines: list[str] = list(text or [])
        if input is not None:
            if str(input) == "-":
                raw = sys.stdin.buffer.read()
            elif not input.exists():
                raise ConfigError(f"no such input file: {input}")
            else:
                raw = input.read_bytes()
            # Undecodable bytes become U+FFFD rather than stopping a batch job.
            lines.extend(raw.decode("utf-8", errors="replace").splitlines())
        if not lines:
            raise ConfigError("give messages as arguments or with --input FILE")
        today = pipeline.today()
        for line in lines:
            sys.stdout.write(json.dumps(pipeline.parse(line, today), ensure_ascii=False) + "\n")


def eval_command(
    train_path: Annotated[
        Path | None, typer.Option("--train", help="Training data (Rasa YAML file or folder).")
    ] = None,
    test_path: Annotated[
        Path | None, typer.Option("--test", help="Test data (Rasa YAML); out_of_scope = OOS.")
    ] = None,
    val_path: Annotated[
        Path | None, typer.Option("--val", help="Validation data to choose the threshold on.")
    ] = None,
    cv: Annotated[
        int, typer.Option(help="k-fold cross-validation on the training data instead of --test.")
    ] = 0,
    config: Annotated[
        Path | None, typer.Option(help="Pipeline config (default nlu_data/config.yml).")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write a confusion-matrix PNG here, and a reliability diagram beside it."),
    ] = None,
    dialogue: Annotated[
        bool,
        typer.Option(
            "--dialogue",
            help="Run the labelled conversations of nlu_data/eval/ through the engine and score its "
            "decisions (report: benchmarks/results/dialogue_eval.json).",
        ),
    ] = False,
    sets: Annotated[
        list[Path] | None, typer.Option("--set", help="With --dialogue: these labelled sets instead.")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="native, or rasa: train and parse through a real Rasa (docs/rasa.md).")
    ] = "native",
    rasa_classifier: Annotated[str, typer.Option(help="With --backend rasa: diet or logreg.")] = "diet",
    rasa_epochs: Annotated[int, typer.Option(help="With --backend rasa: DIET's epochs.")] = 100,
) -> None:
    """Evaluate the NLU on a test set (optionally choosing the threshold on --val) or by --cv folds;
    with --dialogue, the bot's decisions on labelled conversations."""
    if dialogue:
        from bot.cli.dialogue_cmd import dialogue_eval

        dialogue_eval(sets, report)
        return
    from bot.nlu.evaluation import (
        cross_validate,
        evaluate,
        plot_confusion,
        plot_reliability,
        reliability_path,
    )

    s = settings()
    with friendly_errors():
        config_path = config or s.data_dir / CONFIG_FILE
        pipeline_config = PipelineConfig.from_file(config_path)
        context = Context(config_path.parent, cache_dir=cache_dir_for(s.nlu_model_path))
        train_data = load_training_data(train_path or s.data_dir)
        if backend not in ("native", "rasa"):
            raise ConfigError(f"--backend must be native or rasa, got {backend!r}")
        if backend == "rasa":
            from functools import partial

            from bot.nlu.rasa_eval import RasaOptions, cross_validate_rasa, evaluate_rasa
            from bot.nlu.rasa_project import Classifier

            if rasa_classifier not in set(Classifier):
                raise ConfigError(f"--rasa-classifier must be diet or logreg, got {rasa_classifier!r}")
            options = RasaOptions(Classifier(rasa_classifier), rasa_epochs)
            cross_validate = partial(cross_validate_rasa, options=options)
            evaluate = partial(evaluate_rasa, options=options)
        with progress_status("evaluating") as progress:
            if cv:
                if cv < 2:
                    raise ConfigError("--cv needs at least 2 folds")
                result = cross_validate(train_data, pipeline_config, context, cv, progress=progress)
            else:
                if test_path is None:
                    raise ConfigError("give --test PATH, or --cv K to cross-validate on the training data")
                test = load_training_data(test_path)
                val = load_training_data(val_path) if val_path else None
                result = evaluate(train_data, test, pipeline_config, context, val, progress)
        scored = result.pop("_scored")
        if plot:
            plot_confusion(scored, result["threshold"], plot)
            plot_reliability(scored, reliability_path(plot))
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text + "\n", encoding="utf-8")
    _summary(result)
    if not report:
        sys.stdout.write(text + "\n")


SUMMARY_KEYS = (
    "in_scope_accuracy",
    "oos_recall",
    "oos_precision",
    "accuracy",
    "macro_f1",
    "threshold",
    "train_seconds",
    "parse_ms_p50",
    "parse_ms_p99",
)


def _summary(result: dict[str, object]) -> None:
    from rich.table import Table

    table = Table(title="NLU evaluation")
    for key in SUMMARY_KEYS:
        table.add_column(key)
    table.add_row(*(str(result.get(key)) for key in SUMMARY_KEYS))
    console.print(table)


def shell(
    model: Annotated[Path | None, typer.Option(help="Model folder (default models/nlu).")] = None,
) -> None:
    """Type a message, see its parse (Ctrl-D to quit)."""
    from rich.pretty import pprint

    with friendly_errors():
        pipeline = _load_pipeline(model)
    console.print("triage shell — type a message (Ctrl-D to quit)")
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        result = pipeline.parse(line)
        pprint(
            {k: result[k] for k in ("intent", "ambiguous", "language", "entities", "severity", "sentiment")},
            console=console,
            expand_all=False,
        )


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(parse)
    app.command("eval")(eval_command)
    app.command()(shell)
